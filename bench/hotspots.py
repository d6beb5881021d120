"""Measure the build's known hot spots in isolation, current code against the proposed fix.

    python -m bench.hotspots --db BUILT.db --raw RAW_DIR [--workdir DIR] [--sizes 5000,10000,20000]

BUILT.db is any database the build made from RAW_DIR (e.g. bench/data/civcas.db): its
figures, incidents and statements are copied into a scratch database without indexes,
as they are when the build's checks and derive steps run. Each experiment calls the
current civcas function itself (so it measures whatever civcas/ holds today) and the
alternative proposed in docs/performance.md, and checks that both give the same result.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from civcas import checks, derive
from civcas.load import load_tables
from civcas.schema import BREAKDOWNS, FIGURES

from .measure import run_measured


PRAGMAS = ("PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -65536")


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return round(time.perf_counter() - started, 3), out


def scratch(workdir: Path, built: Path, figures_limit: int | None = None, name: str = "hotspots.db") -> sqlite3.Connection:
    path = workdir / name
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    for p in PRAGMAS:
        conn.execute(p)
    conn.execute("ATTACH ? AS built", (str(built),))
    limit = f" LIMIT {int(figures_limit)}" if figures_limit else ""
    # Same column definitions as the built tables, no indexes (the build checks and derives before indexing).
    for table in ("figures",):
        sql = conn.execute("SELECT sql FROM built.sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        conn.execute(sql)
        conn.execute(f"INSERT INTO main.[{table}] SELECT * FROM built.[{table}] ORDER BY rowid{limit}")
    conn.execute("DETACH built")
    return conn


def provisional(conn) -> list:
    return conn.execute("SELECT rowid, provisional FROM figures ORDER BY rowid").fetchall()


def breakdowns_one_query(conn: sqlite3.Connection) -> list[tuple]:
    """check_breakdowns as one query: every (part, total) pair at once, incident matched with IS."""
    same = " AND ".join(f"t.[{c}] IS b.[{c}]" for c in checks.SAME_CLAIM)
    pairs = ", ".join(f"('{part}', '{total}')" for part, totals in BREAKDOWNS.items() for total in totals)
    conn.execute("CREATE INDEX temp_breakdown ON figures (metric, incident_id, source_id, claimant)")
    try:
        return conn.execute(
            f"WITH pairs(part, total) AS (VALUES {pairs}) "
            f"SELECT b.rowid, b.value_min, t.value_max, t.figure_id FROM pairs p "
            f"JOIN figures b ON b.metric = p.part JOIN figures t ON t.metric = p.total AND {same} "
            f"WHERE b.value_min > t.value_max").fetchall()
    finally:
        conn.execute("DROP INDEX temp_breakdown")


# derive_figure_provisional before commit 25a7339: a correlated subquery per figure. Figures have no
# index yet when derive runs, and SQLite builds no automatic index for it, so every figure scans them all.
OLD_PROVISIONAL = """
    UPDATE figures SET provisional = NOT EXISTS (
        SELECT 1 FROM figures g
        WHERE g.metric = figures.metric AND g.source_id != figures.source_id
          AND g.incident_id IS figures.incident_id AND g.scope_area IS figures.scope_area
          AND g.scope_perpetrator IS figures.scope_perpetrator
          AND g.value_min IS figures.value_min AND g.value_max IS figures.value_max)"""


def experiment_provisional(workdir: Path, built: Path, sizes: list[int]) -> dict:
    """The old correlated subquery (quadratic) against civcas's current derive_figure_provisional."""
    current = getattr(derive, "derive_figure_provisional", None)
    if current is None:
        return {"skipped": "civcas.derive.derive_figure_provisional no longer exists"}
    out = {"by_size": []}
    for n in sizes:
        conn = scratch(workdir, built, n)
        old_seconds, _ = timed(conn.execute, OLD_PROVISIONAL)
        before = provisional(conn)
        new_seconds, _ = timed(current, conn)
        same = provisional(conn) == before
        out["by_size"].append({"figures": n, "old_seconds": old_seconds, "current_seconds": new_seconds,
                               "same_result": same})
        print(f"  provisional, {n:>9,} figures: old correlated subquery {old_seconds:8.2f} s, current "
              f"{new_seconds:6.2f} s, same result: {same}", file=sys.stderr)
        conn.close()
    conn = scratch(workdir, built)
    out["all_figures"] = conn.execute("SELECT count(*) FROM figures").fetchone()[0]
    out["current_seconds_all"] = timed(current, conn)[0]
    print(f"  provisional: current over all {out['all_figures']:,} figures {out['current_seconds_all']} s",
          file=sys.stderr)
    conn.close()
    return out


def experiment_breakdowns(workdir: Path, built: Path) -> dict:
    conn = scratch(workdir, built)
    # Break the rule on purpose so both versions have something to find: for 1 civilian toll in 1,000,
    # add a children_killed figure from the same claim that exceeds it.
    columns = [r[1] for r in conn.execute("PRAGMA table_info(figures)")]
    replace = {"figure_id": "figure_id || '-broken'", "metric": "'children_killed'", "value_min": "value_max + 1",
               "value_max": "value_max + 1", "qualifier": "'exact'"}
    conn.execute(f"INSERT INTO figures ({', '.join(columns)}) SELECT {', '.join(replace.get(c, c) for c in columns)} "
                 "FROM figures WHERE metric = 'civilians_killed' AND value_max IS NOT NULL AND rowid % 1000 = 7")
    figures = SimpleNamespace(path="figures.csv", line_of=lambda rowid: rowid)
    current_seconds, problems = timed(checks.check_breakdowns, conn, figures)
    one_seconds, rows = timed(breakdowns_one_query, conn)
    conn.close()
    same = sorted(p.line for p in problems) == sorted(r[0] for r in rows)
    out = {"current_seconds": current_seconds, "queries": 2 * sum(len(t) for t in BREAKDOWNS.values()),
           "one_query_seconds": one_seconds, "problems_found": len(problems), "same_problems": same}
    print(f"  check_breakdowns: current ({out['queries']} queries) {current_seconds} s; one query + one index "
          f"{one_seconds} s; {len(problems)} problems, same rows: {same}", file=sys.stderr)
    return out


def experiment_redundant_index(workdir: Path, built: Path) -> dict:
    conn = scratch(workdir, built)
    first, _ = timed(conn.execute, "CREATE INDEX a ON figures (incident_id, metric)")
    second, _ = timed(conn.execute, "CREATE INDEX b ON figures (incident_id)")
    pages = conn.execute("SELECT count(*) FROM dbstat WHERE name = 'b'").fetchone()[0] \
        if conn.execute("SELECT 1 FROM pragma_module_list WHERE name = 'dbstat'").fetchone() else None
    conn.close()
    out = {"incident_id_metric_seconds": first, "redundant_incident_id_seconds": second, "redundant_pages": pages}
    print(f"  redundant index figures(incident_id): {second} s to build (besides (incident_id, metric) {first} s)",
          file=sys.stderr)
    return out


JOURNAL_VARIANTS = {
    # name: (journal mode, whether to COMMIT and switch to journal_mode OFF once the files are loaded)
    "MEMORY, one transaction (build.py today)": ("MEMORY", False),
    "OFF, one transaction (build.py before 1a28445)": ("OFF", False),
    "DELETE (file journal), one transaction": ("DELETE", False),
    "MEMORY to load, then COMMIT + journal_mode OFF": ("MEMORY", True),
}


def journal_child(raw: Path, workdir: Path, variant: str) -> None:
    """In a child process: load RAW with civcas's own functions inside one transaction, as build() does,
    then run the first derive steps (place columns, year); print the peak RSS after each step."""
    import sqlite_utils

    from civcas import build as civcas_build
    from civcas.schema import ALL_TABLES

    def peak() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    mode, switch = JOURNAL_VARIANTS[variant]
    path = workdir / "journal.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {mode}")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -65536")
    db = sqlite_utils.Database(conn)
    for table in ALL_TABLES:
        civcas_build.create_table(db, table)
    conn.execute("BEGIN")
    _, problems = civcas_build.load_all(conn, raw, str(raw))
    out = {"problems": len(problems), "peak_after_load_mb": peak()}
    if switch:
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("BEGIN")
    for step in ("derive_place_columns", "derive_year", "derive_ranges"):
        if hasattr(derive, step):
            started = time.perf_counter()
            getattr(derive, step)(conn)
            out[f"{step}_seconds"] = round(time.perf_counter() - started, 2)
            out[f"peak_after_{step}_mb"] = peak()
    conn.execute("COMMIT")
    conn.close()
    path.unlink()
    print(json.dumps(out))


def experiment_journal(workdir: Path, built: Path, raw: Path) -> dict:
    out = {}
    for variant in JOURNAL_VARIANTS:
        stdout = workdir / "journal.out"
        m = run_measured([sys.executable, "-m", "bench.hotspots", "--db", str(built), "--raw", str(raw),
                          "--workdir", str(workdir), "--journal-child", variant], stdout_path=stdout,
                         stderr_path=workdir / "journal.err", cwd=Path(__file__).resolve().parent.parent)
        detail = json.loads(stdout.read_text()) if m.ok else {"error": m.tail()}
        out[variant] = detail | {"peak_rss_mb": m.peak_rss_mb}
        steps = ", ".join(f"{k[len('peak_after_'):-3]} {v} MB" for k, v in detail.items() if k.startswith("peak_after_"))
        print(f"  journal {variant:<48} peak RSS {m.peak_rss_mb:7.1f} MB (after {steps})", file=sys.stderr)
    return out


def experiment_load(workdir: Path, raw: Path) -> dict:
    """The Python floor of streaming figures.csv into SQLite, against civcas.load.load_tables (stage, validate in
    a second thread, typed copy) for figures alone (its references then fail: they are not counted here)."""
    path = raw / "figures.csv"
    names = [c.name for c in FIGURES.raw_columns]

    def read_only():
        with open(path, encoding="utf-8", newline="") as f:
            return sum(1 for _ in csv.reader(f))

    def fresh():
        db = workdir / "load.db"
        if db.exists():
            db.unlink()
        conn = sqlite3.connect(db, isolation_level=None)
        for p in PRAGMAS:
            conn.execute(p)
        conn.execute(f"CREATE TABLE figures ({', '.join(f'[{n}]' for n in names)})")
        conn.execute("BEGIN")
        return conn

    def csv_executemany():
        conn = fresh()
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            conn.executemany(f"INSERT INTO figures VALUES ({', '.join('?' for _ in names)})", reader)
        conn.execute("COMMIT")
        conn.close()

    def civcas_load():
        conn = fresh()
        conn.execute("DROP TABLE figures")
        conn.execute("CREATE TABLE figures (" + ", ".join(
            f"[{c.name}] {c.sql_type}" + (" PRIMARY KEY" if c.name == FIGURES.pk else "") for c in FIGURES.columns) + ")")
        conn.execute("COMMIT")
        problems = []
        load_tables(conn, (FIGURES,), raw, str(raw), workdir / ".load-stage", problems)
        conn.close()
        return problems

    out = {"rows": read_only() - 1}
    out["csv_reader_seconds"] = timed(read_only)[0]
    out["csv_reader_executemany_seconds"] = timed(csv_executemany)[0]
    seconds, problems = timed(civcas_load)
    out["civcas_load_tables_seconds"] = seconds
    out["problems"] = len(problems)
    print(f"  load figures ({out['rows']:,} rows): csv.reader only {out['csv_reader_seconds']} s; csv.reader -> "
          f"executemany {out['csv_reader_executemany_seconds']} s; civcas load_tables {seconds} s", file=sys.stderr)
    (workdir / "load.db").unlink()
    return out


def experiment_sql(built: Path) -> dict:
    """SQL behind the slowest pages, timed on the built database (best of 3), with the proposed rewrite."""
    import yaml

    from .site import METADATA, samples
    s = samples(built, "raqqa")
    queries = yaml.safe_load(METADATA.read_text(encoding="utf-8"))["databases"]["civcas"].get("queries", {})
    cases = {
        "facet on an indexed column (belligerent)":
            "SELECT belligerent, count(*) FROM incidents GROUP BY belligerent ORDER BY 2 DESC LIMIT 11",
        "facet on a column without index (belligerent_assessment)":
            "SELECT belligerent_assessment, count(*) FROM incidents GROUP BY 1 ORDER BY 2 DESC LIMIT 11",
        "count(*) for ?country=SY": "SELECT count(*) FROM incidents WHERE country = 'SY'",
    }
    params = {"incident": s["incident"], "from": s["from"], "to": s["to"], "belligerent": s["belligerent"]}
    for name, rewrite in (("claims_for_incident", ("where :incident = '' or f.incident_id = :incident",
                                                   "where f.incident_id = :incident")),
                          ("incidents_in_date_range", ("where (:from = '' or date_end >= :from) and (:to = '' or date_start <= :to)",
                                                       "where date_start <= :to and date_start >= date(:from, '-366 days') and date_end >= :from")),
                          ("incidents_by_belligerent", ("where :belligerent = '' or i.belligerent = :belligerent",
                                                        "where i.belligerent = :belligerent"))):
        sql = (queries.get(name) or {}).get("sql")
        if sql and rewrite[0] in sql:
            cases[f"query {name} with a parameter, as in metadata.yml"] = sql
            cases[f"query {name} with a parameter, rewritten without OR"] = sql.replace(*rewrite)
    conn = sqlite3.connect(f"file:{built}?mode=ro", uri=True)
    out = {}
    for label, sql in cases.items():
        names = set(re.findall(r"(?<![:\w]):(\w+)", sql))
        args = {k: v for k, v in params.items() if k in names}
        best, rows = None, 0
        for _ in range(3):
            started = time.perf_counter()
            rows = len(conn.execute(sql, args).fetchmany(2001))
            elapsed = time.perf_counter() - started
            best = elapsed if best is None else min(best, elapsed)
        out[label] = {"ms": round(best * 1000, 1), "rows": rows}
        print(f"  {label:<72} {best * 1000:9.1f} ms ({rows} rows)", file=sys.stderr)
    conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a database built from --raw")
    parser.add_argument("--raw", required=True)
    parser.add_argument("--workdir", default=str(Path(__file__).resolve().parent / "data"))
    parser.add_argument("--sizes", default="5000,10000,20000", help="figures for the quadratic experiment")
    parser.add_argument("--only", action="append", choices=["provisional", "breakdowns", "index", "load", "journal", "sql"])
    parser.add_argument("--journal-child", choices=sorted(JOURNAL_VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.journal_child:
        journal_child(Path(args.raw), Path(args.workdir), args.journal_child)
        return 0
    workdir, built, raw = Path(args.workdir), Path(args.db).resolve(), Path(args.raw)
    workdir.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["provisional", "breakdowns", "index", "load", "journal", "sql"])
    result = {}
    if "provisional" in only:
        result["provisional"] = experiment_provisional(workdir, built, [int(x) for x in args.sizes.split(",")])
    if "breakdowns" in only:
        result["breakdowns"] = experiment_breakdowns(workdir, built)
    if "index" in only:
        result["redundant_index"] = experiment_redundant_index(workdir, built)
    if "load" in only:
        result["load"] = experiment_load(workdir, raw)
    if "sql" in only:
        result["sql"] = experiment_sql(built)
    if "journal" in only:
        result["journal"] = experiment_journal(workdir, built, raw)
    (workdir / "hotspots.db").unlink(missing_ok=True)
    (workdir / "hotspots.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
