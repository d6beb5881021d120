"""The full-text search tables, built beside the rest of the build and moved into the database whole.

Each table with `Table.fts` gets an FTS5 table `<table>_fts` over those columns (tokenizer porter), with the
table itself as its external content: Datasette's search box and `?_search=` use it. Filling an FTS5 index is
one of the longest steps of a large build (31 s of 250 at 1M incidents, docs/performance.md) and needs nothing
but the finished rows, so a second thread builds the same index as a contentless FTS5 table in a scratch file
of its own (reading the database through a read-only connection while the main thread goes on writing
indexes and summary tables), and the main thread then copies the index's shadow tables (`_data`, `_idx`,
`_docsize`, `_config`) into the real FTS5 table: a contentless table and an external-content table store their
index in the same records, and FTS5's 'integrity-check' (tests/test_build.py) proves the copy answers for the
content table's rows.
"""
from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

from .load import attached, scratch_file
from .schema import TABLES, Table
from .validate import typed_sql

SEARCHED = tuple(t for t in TABLES if t.fts)
# Tables whose searched columns are all raw text are indexed from their staging files as soon as they are
# validated (the staged text is the typed text, an empty cell is NULL either way, and the rowids are the same);
# the others (incidents: the place's names are derived, and written as the incidents are copied) from the
# database once loaded.
SEARCHED_FROM_STAGING = tuple(t for t in SEARCHED
                              if all(not t.column(n).derived and t.column(n).sql_type == "TEXT" for n in t.fts))
SEARCHED_AFTER_LOAD = tuple(t for t in SEARCHED if t not in SEARCHED_FROM_STAGING)
SHADOWS = ("data", "idx", "docsize", "config")


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_sql(table: Table, content: str | None = None) -> str:
    """The CREATE VIRTUAL TABLE sqlite-utils' enable_fts(..., tokenize='porter') writes, byte for byte (Datasette
    finds a table's search table by its `content=` clause); `content` overrides the content table."""
    return textwrap.dedent(f"""
        CREATE VIRTUAL TABLE {q(table.name + "_fts")} USING FTS5 (
            {", ".join(q(c) for c in table.fts)},
            tokenize='porter',
            content={content if content is not None else q(table.name)}
        )
    """).strip()


def index_staged(staged: Path, table: Table, path: Path) -> None:
    """Add a contentless copy of `table`'s search table to the scratch file `path`, from its staging file
    (civcas.load, in the validation thread: one table at a time)."""
    columns = ", ".join(q(c) for c in table.fts)
    typed = ", ".join(typed_sql(table.column(name)) for name in table.fts)
    with scratch_file(path, staged) as conn:
        conn.execute(create_sql(table, content="''"))
        conn.execute(f"INSERT INTO main.{q(table.name + '_fts')} (rowid, {columns}) SELECT rowid, {typed} FROM src.raw")


def build_search_file(db_path: Path, path: Path, tables: tuple[Table, ...]) -> Path:
    """Add a contentless copy of the search tables of `tables` to the scratch file `path`, from the rows of
    `db_path` (another thread's work; the database is read, never written). Returns `path`."""
    with scratch_file(path, db_path) as conn:
        for table in tables:
            columns = ", ".join(q(c) for c in table.fts)
            conn.execute(create_sql(table, content="''"))
            conn.execute(f"INSERT INTO main.{q(table.name + '_fts')} (rowid, {columns}) "
                         f"SELECT rowid, {columns} FROM src.{q(table.name)}")
    return path


def move_search_tables(conn: sqlite3.Connection, path: Path) -> None:
    """Create every search table in the database on `conn` and fill it with the index built in `path`."""
    with attached(conn, path, "search"):
        for table in SEARCHED:
            conn.execute(create_sql(table))
            for shadow in SHADOWS:
                name = q(f"{table.name}_fts_{shadow}")
                conn.execute(f"DELETE FROM main.{name}")  # the empty index CREATE VIRTUAL TABLE wrote
                conn.execute(f"INSERT INTO main.{name} SELECT * FROM search.{name}")
