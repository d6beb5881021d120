"""The baseline: the same tables, indexes and search tables, made by the sqlite3 CLI alone.

    python -m bench.baseline --raw DIR --db PATH [--sqlite3 /usr/bin/sqlite3]

"The same end product made at the limit": a fresh SQLite file; for every
curated table a CREATE TABLE generated from civcas.schema (same columns, types,
primary key, NOT NULL and REFERENCES clauses, derived columns added empty);
`.import --csv` of the same CSV files; then Table.indexes and an index on every
foreign-key column not already indexed (what sqlite-utils' index_foreign_keys
does), and the same FTS5 external-content tables (same columns, tokenize
'porter') filled with INSERT INTO x_fts(rowid, ...) SELECT .... Pragmas:
the build's page size, journal off, synchronous off, 64 MB page cache (the build
uses 32 MB).

No validation, no derived values, no ANALYZE: this is the floor the build is
compared with. One difference in the product: .import stores an empty cell as
'' where the build stores NULL.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from civcas.load import PAGE_SIZE
from civcas.schema import TABLES, Table

from .measure import Measured, run_measured

# The build's page size too (civcas.load.PAGE_SIZE): the same file format, so that the two are compared on the
# same end product. (With SQLite's default 4 KB pages the baseline took about as much CPU: 75.3 against 73.8 s.)
PRAGMAS = (f"PRAGMA page_size = {PAGE_SIZE};", "PRAGMA journal_mode = OFF;", "PRAGMA synchronous = OFF;",
           "PRAGMA cache_size = -65536;")


def q(name: str) -> str:
    return f"[{name}]"


def create_table_sql(table: Table) -> str:
    """CREATE TABLE for the raw columns, in the CSV's order (derived columns are added after the import)."""
    lines = []
    for c in table.raw_columns:
        line = f"   {q(c.name)} {c.sql_type}"
        if c.name == table.pk:
            line += " PRIMARY KEY"
        if c.required:
            line += " NOT NULL"
        if c.references:
            ref_table, ref_column = c.references.split(".")
            line += f" REFERENCES {q(ref_table)}({q(ref_column)})"
        lines.append(line)
    return f"CREATE TABLE {q(table.name)} (\n" + ",\n".join(lines) + "\n);"


def add_derived_sql(table: Table) -> list[str]:
    out = []
    for c in table.derived_columns:
        ref = ""
        if c.references:
            ref_table, ref_column = c.references.split(".")
            ref = f" REFERENCES {q(ref_table)}({q(ref_column)})"
        out.append(f"ALTER TABLE {q(table.name)} ADD COLUMN {q(c.name)} {c.sql_type}{ref};")
    return out


def index_sql() -> list[str]:
    """Table.indexes for every table, then an index per foreign-key column not yet indexed."""
    out, existing = [], {t.name: set() for t in TABLES}
    for table in TABLES:
        for columns in table.indexes:
            out.append(f"CREATE INDEX {q('idx_' + table.name + '_' + '_'.join(columns))} "
                       f"ON {q(table.name)} ({', '.join(q(c) for c in columns)});")
            existing[table.name].add(tuple(columns))
    for table in TABLES:
        for column, _, _ in table.foreign_keys:
            if (column,) not in existing[table.name]:
                out.append(f"CREATE INDEX {q('idx_' + table.name + '_' + column)} ON {q(table.name)} ({q(column)});")
                existing[table.name].add((column,))
    return out


def fts_sql() -> list[str]:
    out = []
    for table in TABLES:
        if not table.fts:
            continue
        cols = ", ".join(q(c) for c in table.fts)
        fts = q(table.name + "_fts")
        out.append(f"CREATE VIRTUAL TABLE {fts} USING FTS5 ({cols}, tokenize='porter', content={q(table.name)});")
        out.append(f"INSERT INTO {fts} (rowid, {cols}) SELECT rowid, {cols} FROM {q(table.name)};")
    return out


def script(raw_dir: Path) -> str:
    """The whole baseline as one sqlite3 CLI script; `@t|phase|unix time` lines mark the phases."""
    def mark(phase: str) -> str:
        return f"SELECT '@t', '{phase}', (julianday('now') - 2440587.5) * 86400.0;"

    lines = [".bail on", *PRAGMAS, mark("create")]
    lines += [create_table_sql(t) for t in TABLES]
    lines.append(mark("import"))
    for table in TABLES:
        path = (raw_dir / f"{table.name}.csv").resolve()
        lines.append(f'.import --csv --skip 1 "{path}" {table.name}')
    lines += [sql for t in TABLES for sql in add_derived_sql(t)]
    lines.append(mark("indexes"))
    lines += index_sql()
    lines.append(mark("fts"))
    lines += fts_sql()
    lines.append(mark("end"))
    return "\n".join(lines) + "\n"


def phases_from_output(text: str) -> dict[str, float]:
    marks = [(line.split("|")[1], float(line.split("|")[2])) for line in text.splitlines() if line.startswith("@t|")]
    return {name: round(t1 - t0, 3) for (name, t0), (_, t1) in zip(marks, marks[1:])}


def run_baseline(raw_dir: Path, db_path: Path, sqlite3: str = "sqlite3", timeout: float | None = None) -> tuple[Measured, dict]:
    """Build the baseline database with the sqlite3 CLI; returns the measurement and per-phase seconds."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    for p in (db_path, db_path.with_name(db_path.name + "-journal")):
        if p.exists():
            p.unlink()
    sql_path = db_path.with_suffix(".sql")
    sql_path.write_text(script(raw_dir))
    out_path, err_path = db_path.with_suffix(".out"), db_path.with_suffix(".err")
    measured = run_measured([sqlite3, str(db_path), f".read {sql_path}"], stdout_path=out_path,
                            stderr_path=err_path, timeout=timeout)
    return measured, phases_from_output(out_path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--sqlite3", default="sqlite3")
    parser.add_argument("--print-sql", action="store_true", help="print the script and exit")
    args = parser.parse_args(argv)
    if args.print_sql:
        print(script(Path(args.raw)))
        return 0
    measured, phases = run_baseline(Path(args.raw), Path(args.db), args.sqlite3)
    print(json.dumps(measured.as_dict() | {"phases": phases}, indent=2))
    if not measured.ok:
        print(measured.tail(), file=sys.stderr)
    return 0 if measured.ok else 1


if __name__ == "__main__":
    sys.exit(main())
