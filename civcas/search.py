"""The full-text search tables, built beside the rest of the build and moved into the database whole.

Each table with `Table.fts` gets an FTS5 table `<table>_fts` over those columns (tokenizer porter), with the
table itself as its external content: Datasette's search box and `?_search=` use it. Filling an FTS5 index is
one of the longest steps of a large build (~30 s at 1M incidents, docs/performance.md), so other threads build
the same index as contentless FTS5 tables in a scratch file: a thread of the loading from each valid table's
staging file (index_staged), another from the database once it is loaded (build_search_file). The main thread
then copies the index's shadow tables (`_data`, `_idx`, `_docsize`, `_config`) into the real FTS5 tables
(move_search_tables): a contentless table and an external-content table store their index in the same records,
and tests/test_build.py checks that every moved index is, row for row, the one FTS5 makes from the table.
"""
from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

from .load import attached, scratch_file
from .schema import TABLES, Table
from .validate import quoted as q, typed_sql

SEARCHED = tuple(t for t in TABLES if t.fts)
# Tables whose searched columns are all raw text are indexed from their staging files as soon as they are
# validated (the staged text is the typed text, an empty cell is NULL either way, and the rowids are the same);
# the others (incidents: the place's names are derived, and written as the incidents are copied) from the
# database once loaded.
SEARCHED_FROM_STAGING = tuple(t for t in SEARCHED
                              if all(not t.column(n).derived and t.column(n).sql_type == "TEXT" for n in t.fts))
SEARCHED_AFTER_LOAD = tuple(t for t in SEARCHED if t not in SEARCHED_FROM_STAGING)
SHADOWS = ("data", "idx", "docsize", "config")


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


def _fill_contentless(conn: sqlite3.Connection, table: Table, values: str, source: str) -> None:
    """A contentless copy of `table`'s search table in the scratch file on `conn`, filled with `values` (the
    searched columns' values, in Table.fts order) of every row of `source`, under the same rowids."""
    conn.execute(create_sql(table, content="''"))
    conn.execute(f"INSERT INTO main.{q(table.name + '_fts')} (rowid, {', '.join(q(c) for c in table.fts)}) "
                 f"SELECT rowid, {values} FROM {source}")


def index_staged(staged: Path, table: Table, path: Path) -> None:
    """Add a contentless copy of `table`'s search table to the scratch file `path`, from its staging file
    (civcas.load's after_validation: one table at a time)."""
    with scratch_file(path, staged) as conn:
        _fill_contentless(conn, table, ", ".join(typed_sql(table.column(name)) for name in table.fts), "src.raw")


def build_search_file(db_path: Path, path: Path, tables: tuple[Table, ...]) -> Path:
    """Add a contentless copy of the search tables of `tables` to the scratch file `path`, from the rows of
    `db_path` (another thread's work; the database is read, never written). Returns `path`."""
    with scratch_file(path, db_path) as conn:
        for table in tables:
            _fill_contentless(conn, table, ", ".join(q(c) for c in table.fts), f"src.{q(table.name)}")
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
