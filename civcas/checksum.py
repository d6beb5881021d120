"""Checksums that let anyone verify a civcas.db against the raw files it was built from.

    python -m civcas.checksum civcas.db     # recompute and compare with build_info; exit 1 on mismatch

`table_sha256` hashes a table's rows in primary-key order, each row as SQLite's `json_array()` of its values
(which tells NULL, integers and text apart) and Python's repr of its REAL values, so two databases with the
same contents give the same checksum whatever their page layout. `build_info` records the
checksum of every table (`table_sha256`, JSON), one over all of them (`data_sha256`) and one over the raw CSV
files (`raw_sha256`). A downloader recomputes the first two from the file itself; rebuilding from the raw files
at `source_commit` must give the same `data_sha256`.

The row format changed on 2026-12-01, during release 2026.12.01 (CHANGELOG.md): every value used to be tagged in
SQL one by one, which took twice as long at 1M incidents (docs/performance.md). The same data built by earlier
code has other checksums, and so another `data_version`.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys

from .schema import ALL_TABLES, BUILD_INFO
from .validate import quoted

# build_info describes the build itself (its time, its checksums), so it is left out of the data checksum.
CHECKED = tuple(t for t in ALL_TABLES if t is not BUILD_INFO)


def _tag(value) -> bytes:
    if value is None:
        return b"\x00N"
    if isinstance(value, int):
        return b"\x00I" + str(value).encode()
    if isinstance(value, float):
        return b"\x00R" + repr(value).encode()
    if isinstance(value, bytes):
        return b"\x00B" + value
    return b"\x00T" + value.encode("utf-8")


def table_sha256(conn: sqlite3.Connection, table: str, pk: str, checked_types: bool = False) -> str:
    """SHA-256 over the names of the table's columns (JSON), then each row in primary-key order: SQLite's
    json_array() of the values of the columns not declared REAL, then each value of a column declared REAL tagged
    with its type (_tag), then a 0x01 byte.

    json_array() writes NULL, integers and text exactly (the same bytes in SQLite 3.40.1 and 3.51.1 for control
    characters, quotes, backslashes and non-ASCII text: docs/performance.md), but a REAL only to 15 digits and a
    BLOB not at all (3.40 raises an error, 3.51 writes null): a row holding a BLOB, or a REAL in a column not
    declared REAL, is hashed as a 0x02 byte and then every value tagged (_tag) instead. Finding those rows takes a
    scan of its own; `checked_types=True` skips it when the caller knows there are none (the build: it writes only
    TEXT, INTEGER or NULL into those columns, and tests/test_release.py verifies a built file the long way)."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    names = [r[1] for r in info]
    reals = [r[1] for r in info if r[2].upper() == "REAL"]
    others = [n for n in names if n not in reals]
    row_json = f"CAST(json_array({', '.join(map(quoted, others))}) AS BLOB)" if others else "X''"
    if not checked_types and others:
        odd = " OR ".join(f"typeof({quoted(n)}) IN ('blob', 'real')" for n in others)
        if conn.execute(f'SELECT 1 FROM "{table}" WHERE {odd} LIMIT 1').fetchone():
            row_json = f"CASE WHEN {odd} THEN NULL ELSE {row_json} END"
    digest = hashlib.sha256()
    digest.update(json.dumps(names).encode())
    update = digest.update
    every = ", ".join(map(quoted, names))
    for encoded, *values, rowid in conn.execute(
            f'SELECT {row_json}, {"".join(quoted(r) + ", " for r in reals)}rowid FROM "{table}" ORDER BY {quoted(pk)}'):
        if encoded is None:  # a BLOB, or a REAL in a column not declared REAL
            update(b"\x02")
            for value in conn.execute(f'SELECT {every} FROM "{table}" WHERE rowid = ?', (rowid,)).fetchone():
                update(_tag(value))
        else:
            update(encoded)
            for value in values:
                update(_tag(value))
        update(b"\x01")
    return digest.hexdigest()


def data_checksums(conn: sqlite3.Connection, tables=CHECKED, checked_types: bool = False) -> dict[str, str]:
    return {t.name: table_sha256(conn, t.name, t.pk, checked_types) for t in tables}


def combined(checksums: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()


def verify(path: str) -> list[str]:
    """Problems found comparing the file's contents with its own build_info (empty when it verifies)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        recorded_tables, recorded_data = conn.execute("SELECT table_sha256, data_sha256 FROM build_info").fetchone()
        actual = data_checksums(conn)
    finally:
        conn.close()
    recorded = json.loads(recorded_tables)
    problems = [f"{name}: recorded {recorded.get(name)}, actual {value}"
                for name, value in actual.items() if recorded.get(name) != value]
    if combined(actual) != recorded_data:
        problems.append(f"data_sha256: recorded {recorded_data}, actual {combined(actual)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "civcas.db"
    problems = verify(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{path}: does NOT match its build_info", file=sys.stderr)
        return 1
    print(f"{path}: every table matches its build_info checksum", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
