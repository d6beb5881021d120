"""Run the civcas build in-process with a timer around every step, to find where the time goes.

    python -m bench.phases --raw DIR --db PATH [--json OUT] [--patch NAME ...] [--profile OUT.prof]

It calls civcas.build.build() exactly as build.py does, after wrapping (in this
process only; civcas/ is never modified) the step functions it looks up at call
time: load_table (one phase per table, and within it the SQL validation and the typed copy), every
civcas.checks.check_* and civcas.derive.derive_* function, create_indexes, derive_summaries, create_search,
create_views, write_dictionary, write_build_info, plus the ANALYZE / COMMIT statements build() runs itself.
Each phase reports wall and CPU seconds (the CPU time of the thread that ran it, steadier on a shared machine;
the validation runs in a second thread, beside the reading of the next file) and the process's peak RSS when it
ended.

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


def _record(name: str, seconds: float, cpu: float) -> None:
    PHASES.append({"phase": name, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": _peak_mb()})
    print(f"  {name:<40} {seconds:9.2f} s {cpu:9.2f} s CPU  peak {PHASES[-1]['peak_rss_mb']:7.1f} MB",
          file=sys.stderr, flush=True)


def _timed(name_of, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(name_of(*args, **kwargs), time.perf_counter() - started, time.thread_time() - cpu)
    return wrapper


class TimedConnection(sqlite3.Connection):
    """Times the statements build() runs directly on its connection."""
    WATCH = ("ANALYZE", "COMMIT", "PRAGMA journal_mode = DELETE")
    REWRITE: dict[str, str] = {}  # statement -> replacement, set by a patch

    def execute(self, sql, *args):
        sql = self.REWRITE.get(sql.strip(), sql)
        watched = next((w for w in self.WATCH if sql.strip().startswith(w)), None)
        if watched is None:
            return super().execute(sql, *args)
        started, cpu = time.perf_counter(), time.thread_time()
        cursor = super().execute(sql, *args)
        seconds = time.perf_counter() - started
        if seconds >= 0.005:  # sqlite-utils commits after every table it creates: skip those
            _record(f"sql: {watched}", seconds, time.thread_time() - cpu)
        return cursor


# The fixes the first runs proposed (journal on disk, 32 MB cache, one breakdown query, no duplicate index) are
# all in civcas/ now; --patch is kept for the next proposal.
PATCHES: dict = {}


def apply_patch(name: str) -> None:
    PATCHES[name]()


def instrument() -> None:
    import civcas.build as build
    import civcas.checks as checks
    import civcas.derive as derive
    import civcas.load as load

    for module, prefix, keep in ((checks, "check_", "check_all"), (derive, "derive_", "derive_all")):
        for name, fn in list(vars(module).items()):
            if name.startswith(prefix) and name != keep and isinstance(fn, types.FunctionType):
                label = f"{module.__name__.split('.')[-1]}.{name}"
                setattr(module, name, _timed(lambda *a, _label=label, **k: _label, fn))
    load.stage = _timed(lambda table, *a, **k: f"stage {table.name}", load.stage)
    load.copy_typed = _timed(lambda conn, lt, *a, **k: f"copy_typed {lt.table.name}", load.copy_typed)
    load.validate_staged = _timed(lambda lt, *a, **k: f"  (validation thread) validate {lt.table.name}", load.validate_staged)
    build.build_search_file = _timed(lambda *a, **k: "  (second thread) build_search_file", build.build_search_file)
    build.index_staged = _timed(lambda staged, table, *a, **k: f"  (after-validation thread) index_staged {table.name}",
                                build.index_staged)
    build.build_summary_file = _timed(lambda db, path, name: f"  (summary thread) build_summary_file {name}",
                                      build.build_summary_file)
    build.checksum_file = _timed(lambda *a, **k: "  (second thread) checksum_file", build.checksum_file)
    build.copy_incidents = _timed(lambda *a, **k: "copy_incidents (facts, typed copy)", build.copy_incidents)
    build.load_tables = _timed(lambda *a, **k: "load_tables (all files)", build.load_tables)
    for name in ("create_indexes", "derive_summaries", "derive_page_data", "move_search_tables", "move_summaries", "create_views",
                 "write_dictionary", "write_build_info", "data_checksums"):
        if hasattr(build, name):
            setattr(build, name, _timed(lambda *a, _n=name, **k: _n, getattr(build, name)))
    # build() opens its connection through civcas.load.new_file, which calls its module's `sqlite3.connect`: hand
    # it (and build's own name, for anything build opens itself) a timed connection.
    proxy = types.ModuleType("sqlite3_timed")
    proxy.__dict__.update(sqlite3.__dict__)
    proxy.connect = functools.partial(sqlite3.connect, factory=TimedConnection)
    build.sqlite3 = proxy
    load.sqlite3 = proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--json", help="write the phases as JSON here")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    parser.add_argument("--profile", help="also write a cProfile of the whole build here")
    args = parser.parse_args(argv)

    for unused in ("pandas", "numpy"):  # as build.py does, so that the peak memory compares
        sys.modules.setdefault(unused, None)
    importlib.import_module("civcas.build")  # imports civcas.checks and civcas.derive too, for the patches
    for name in args.patch:
        apply_patch(name)
    instrument()
    from civcas.build import build, stop_sqlite_memory_statistics
    stop_sqlite_memory_statistics()  # as build.py's main() does

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
