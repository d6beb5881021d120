"""Run the civcas build in-process with a timer around every step, to find where the time goes.

    python -m bench.phases --raw DIR --db PATH [--json OUT] [--patch NAME ...] [--profile OUT.prof]

It calls civcas.build.build() exactly as build.py does, after wrapping (in this
process only; civcas/ is never modified) the step functions it looks up at call
time: load_table (one phase per table), every civcas.checks.check_* and
civcas.derive.derive_* function, create_indexes, create_search, create_views,
write_dictionary, write_build_info, plus the ANALYZE / foreign_key_check /
COMMIT statements build() runs itself. Each phase reports seconds and the
process's peak RSS when it ended.

--patch applies a proposed fix from PATCHES in this process only, to measure
what the fix would buy before anyone changes civcas/ (see docs/performance.md).
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import json
import resource
import sqlite3
import sys
import time
import types
from pathlib import Path

PHASES: list[dict] = []


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _record(name: str, seconds: float) -> None:
    PHASES.append({"phase": name, "seconds": round(seconds, 3), "peak_rss_mb": _peak_mb()})
    print(f"  {name:<40} {seconds:9.2f} s  peak {PHASES[-1]['peak_rss_mb']:7.1f} MB", file=sys.stderr, flush=True)


def _timed(name_of, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(name_of(*args, **kwargs), time.perf_counter() - started)
    return wrapper


class TimedConnection(sqlite3.Connection):
    """Times the statements build() runs directly on its connection."""
    WATCH = ("ANALYZE", "PRAGMA foreign_key_check", "COMMIT", "PRAGMA journal_mode = DELETE")
    REWRITE: dict[str, str] = {}  # statement -> replacement, set by a patch

    def execute(self, sql, *args):
        sql = self.REWRITE.get(sql.strip(), sql)
        watched = next((w for w in self.WATCH if sql.strip().startswith(w)), None)
        if watched is None:
            return super().execute(sql, *args)
        started = time.perf_counter()
        cursor = super().execute(sql, *args)
        if watched == "PRAGMA foreign_key_check":
            cursor = _Rows(cursor.fetchall())
        seconds = time.perf_counter() - started
        if seconds >= 0.005:  # sqlite-utils commits after every table it creates: skip those
            _record(f"sql: {watched}", seconds)
        return cursor


class _Rows(list):
    def fetchall(self):
        return list(self)


# --- Proposed fixes, applied in this process only ----------------------------------------

def _replace(module_name: str, attr: str, replacement):
    def apply() -> None:
        module = sys.modules[module_name]
        if not hasattr(module, attr):
            print(f"bench.phases: {module_name}.{attr} no longer exists; patch not applied", file=sys.stderr)
            return
        setattr(module, attr, replacement)
    return apply


def _journal_file() -> None:
    """Keep the rollback journal (savepoints still roll back a batch with a duplicate id) but on disk:
    journal_mode DELETE instead of MEMORY. In MEMORY mode the full-table UPDATEs of the derive step
    keep a copy of every incidents page they touch in RAM (see docs/performance.md)."""
    TimedConnection.REWRITE["PRAGMA journal_mode = MEMORY"] = "PRAGMA journal_mode = DELETE"


def _cache_32mb() -> None:
    """Halve the page cache (64 MB -> 32 MB); SQLite also sizes each sorter's memory from it."""
    TimedConnection.REWRITE["PRAGMA cache_size = -65536"] = "PRAGMA cache_size = -32768"


def _check_breakdowns_one_query(conn: sqlite3.Connection, figures) -> list:
    """check_breakdowns as one query over every (part, total) pair, with one index, instead of
    2 x 11 queries that each scan figures and build an automatic index. Same problems, same messages."""
    from civcas.checks import SAME_CLAIM
    from civcas.schema import BREAKDOWNS
    from civcas.validate import Problem

    same = " AND ".join(f"t.[{c}] IS b.[{c}]" for c in SAME_CLAIM)
    pairs = ", ".join(f"('{part}', '{total}')" for part, totals in BREAKDOWNS.items() for total in totals)
    conn.execute("CREATE INDEX bench_breakdowns ON figures (metric, incident_id, source_id, claimant)")
    try:
        rows = conn.execute(
            f"WITH pairs(part, total) AS (VALUES {pairs}) "
            f"SELECT b.rowid, b.value_min, t.value_max, t.figure_id, p.part, p.total FROM pairs p "
            f"JOIN figures b ON b.metric = p.part JOIN figures t ON t.metric = p.total AND {same} "
            f"WHERE b.value_min > t.value_max").fetchall()
    finally:
        conn.execute("DROP INDEX bench_breakdowns")
    return [Problem(figures.path, figures.line_of(rowid), "value_min",
                    f"{part} exceeds {total} {limit} (figure {total_id!r}) from the same claimant and source "
                    f"for the same incident or scope ({value})")
            for rowid, value, limit, total_id, part, total in rows]


def _create_indexes_no_duplicates(db) -> None:
    """create_indexes, but an index per foreign-key column only when no declared index starts with it
    (sqlite-utils' index_foreign_keys skips exact matches only, so figures gets (incident_id) besides
    (incident_id, metric))."""
    from civcas.schema import TABLES

    for table in TABLES:
        for columns in table.indexes:
            db[table.name].create_index(columns, if_not_exists=True)
    for table in TABLES:
        leading = {columns[0] for columns in table.indexes}
        for column, _, _ in table.foreign_keys:
            if column not in leading:
                db[table.name].create_index([column], if_not_exists=True)
                leading.add(column)


PATCHES = {
    "journal-file": _journal_file,  # applied in civcas/build.py since d7689f9; a no-op there now
    "cache-32mb": _cache_32mb,
    "breakdowns-one-query": _replace("civcas.checks", "check_breakdowns", _check_breakdowns_one_query),
    "no-duplicate-index": _replace("civcas.build", "create_indexes", _create_indexes_no_duplicates),
}


def apply_patch(name: str) -> None:
    PATCHES[name]()


def instrument() -> None:
    import civcas.build as build
    import civcas.checks as checks
    import civcas.derive as derive

    for module, prefix, keep in ((checks, "check_", "check_all"), (derive, "derive_", "derive_all")):
        for name, fn in list(vars(module).items()):
            if name.startswith(prefix) and name != keep and isinstance(fn, types.FunctionType):
                label = f"{module.__name__.split('.')[-1]}.{name}"
                setattr(module, name, _timed(lambda *a, _label=label, **k: _label, fn))
    build.load_table = _timed(lambda conn, table, *a, **k: f"load {table.name}", build.load_table)
    for name in ("create_indexes", "create_search", "create_views", "write_dictionary", "write_build_info"):
        if hasattr(build, name):
            setattr(build, name, _timed(lambda *a, _n=name, **k: _n, getattr(build, name)))
    # build() opens its connection through the module's `sqlite3` name: hand it a timed connection.
    proxy = types.ModuleType("sqlite3_timed")
    proxy.__dict__.update(sqlite3.__dict__)
    proxy.connect = functools.partial(sqlite3.connect, factory=TimedConnection)
    build.sqlite3 = proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--json", help="write the phases as JSON here")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    parser.add_argument("--profile", help="also write a cProfile of the whole build here")
    args = parser.parse_args(argv)

    importlib.import_module("civcas.build")  # imports civcas.checks and civcas.derive too, for the patches
    for name in args.patch:
        apply_patch(name)
    instrument()
    from civcas.build import build

    started = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    problems, counts = build(Path(args.raw), Path(args.db))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    total = time.perf_counter() - started
    for p in problems[:20]:
        print(p, file=sys.stderr)
    result = {"seconds": round(total, 3), "peak_rss_mb": _peak_mb(), "problems": len(problems),
              "patches": args.patch, "phases": PHASES, "counts": counts}
    print(f"  {'total':<40} {total:9.2f} s  peak {_peak_mb():7.1f} MB", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
