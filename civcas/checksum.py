"""Checksums that let anyone verify a civcas.db against the raw files it was built from.

    python -m civcas.checksum civcas.db     # recompute and compare with build_info; exit 1 on mismatch

`table_sha256` hashes a table's rows in primary-key order, each value tagged with its SQLite type, so two
databases with the same contents give the same checksum whatever their page layout. `build_info` records the
checksum of every table (`table_sha256`, JSON), one over all of them (`data_sha256`) and one over the raw CSV
files (`raw_sha256`). A downloader recomputes the first two from the file itself; rebuilding from the raw files
at `source_commit` must give the same `data_sha256`.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys

from .schema import ALL_TABLES, BUILD_INFO

# build_info describes the build itself (its time, its checksums), so it is left out of the data checksum.
CHECKED = tuple(t for t in ALL_TABLES if t is not BUILD_INFO)


def table_sha256(conn: sqlite3.Connection, table: str, pk: str) -> str:
    digest = hashlib.sha256()
    cursor = conn.execute(f'SELECT * FROM "{table}" ORDER BY "{pk}"')
    names = [d[0] for d in cursor.description]
    digest.update(json.dumps(names).encode())
    for row in cursor:
        for value in row:
            if value is None:
                digest.update(b"\x00N")
            elif isinstance(value, int):
                digest.update(b"\x00I" + str(value).encode())
            elif isinstance(value, float):
                digest.update(b"\x00R" + repr(value).encode())
            elif isinstance(value, bytes):
                digest.update(b"\x00B" + value)
            else:
                digest.update(b"\x00T" + value.encode("utf-8"))
        digest.update(b"\x01")
    return digest.hexdigest()


def data_checksums(conn: sqlite3.Connection, tables=CHECKED) -> dict[str, str]:
    return {t.name: table_sha256(conn, t.name, t.pk) for t in tables}


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
