"""Stream the raw CSVs into their tables: stage the text, validate it in SQL, copy the typed rows.

Each file is read once with csv.reader into a staging table of untyped text, in its own temporary SQLite
file, in file order, so a row's rowid maps to the line it started on through `LoadedTable.lines` (4 bytes a
row). Every cell, and every rule across a row's cells, is then checked set-based in SQL (the rules are compiled
in civcas.validate from the column declarations) by a second thread with its own connection, while this thread
copies the rows into the typed table under the same rowids and goes on to the next file: SQLite runs without
Python's lock, so the checks of one file overlap the reading of the next on a second core. Rows found invalid
are taken out of the typed table again before the cross-row checks (civcas.checks), which name lines the same
way. A repeated id is reported with the line that first used it. A table whose copy reads the others (the
incidents, with their derived columns) is copied last by a function the build gives (`copiers`), and the build
may have more done with each valid staged table (`after_validation`: its search index), by a third thread, which
uses what the other two leave of the machine's cores (the main thread waits for the validation at the end).
"""
from __future__ import annotations

import sqlite3
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Callable, Iterator

from .schema import Table
from .validate import (ROW_RULES, Problem, cell_error_sql, check_header, nul_lines, quoted, read_header, read_rows,
                       shown, typed_sql)


# SQLite's page size for every file the build writes. 8 KB pages against the default 4 KB: fewer, fuller pages
# for every scan, sort and index of a large table (a third of the figures' indexes, copies and scans took 10-20 %
# less at 1M incidents; docs/performance.md).
PAGE_SIZE = 8192


def new_file(path: Path) -> sqlite3.Connection:
    """A connection to a new SQLite file the build writes (the database or a scratch or staging file)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    return conn


@dataclass
class LoadedTable:
    table: Table
    path: str                              # as shown in messages, e.g. raw/incidents.csv
    lines: array = field(default_factory=lambda: array("I"))  # rowid - 1 -> line
    rejected: set = field(default_factory=set)  # ids of rows not loaded because they had problems
    complete: bool = True  # False when the file could not be read to its end
    staged: Path | None = None  # the staging file while loading

    def line_of(self, rowid: int) -> int:
        return self.lines[rowid - 1]


# copy_typed's signature: (connection, the staged table, the staging rowids left out) -> rows copied.
Copier = Callable[[sqlite3.Connection, "LoadedTable", set], int]


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own that only reads `path` (a second thread's, while the build writes)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def scratch_file(path: Path, source: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the scratch file `path` (no journal: it is thrown away after the build) with the database
    `source` attached read-only as `src`, inside one transaction: one read snapshot of `source`, one commit."""
    conn = new_file(path)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("ATTACH DATABASE ? AS src", (f"file:{source}?mode=ro",))
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


@contextmanager
def attached(conn: sqlite3.Connection, path: Path, name: str) -> Iterator[None]:
    """The file `path` attached to `conn`, read-only, as `name`, for one write transaction of `conn` (committed at
    the end, rolled back on an error; SQLite detaches only outside a transaction)."""
    conn.execute(f"ATTACH DATABASE ? AS {name}", (f"file:{path}?mode=ro",))
    try:
        conn.execute("BEGIN IMMEDIATE")  # see civcas.build: the write lock first, waiting if need be
        yield
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"DETACH DATABASE {name}")


_WRITES = (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)


@contextmanager
def writes_refused(conn: sqlite3.Connection, tables: set[str]) -> Iterator[None]:
    """Within, `conn` may not write the rows of `tables` in the database (SQLite's authorizer refuses the
    statement): the build takes their checksums beside while this connection goes on with other tables."""
    def authorize(action: int, table: str | None, _column, database: str | None, _trigger) -> int:
        if action in _WRITES and database == "main" and table in tables:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorize)
    try:
        yield
    finally:
        conn.set_authorizer(None)


def register_functions(conn: sqlite3.Connection) -> None:
    """The Python formatting the row rules' messages use (called only for rows that break a rule)."""
    conn.create_function("civcas_str", 1, str, deterministic=True)
    conn.create_function("civcas_shown", 1, shown, deterministic=True)


def load_tables(conn: sqlite3.Connection, tables: tuple[Table, ...], raw_dir: Path, shown_dir: str,
                staging: Path, problems: list[Problem], copiers: dict[str, Copier] | None = None,
                after_validation: Callable[[LoadedTable], None] | None = None) -> dict[str, LoadedTable]:
    """Load every table; `staging` is a path prefix for the staging files (removed before returning).

    copiers: for a table whose copy reads the other tables (the incidents, with the columns derived from their
    figures), the function that copies it in place of copy_typed; it runs once every other table is copied.
    after_validation: more work on a staged table once it is validated and valid, one table at a time in a
    thread of its own, finished before this returns (the build fills the table's full-text index from it). It is
    work for a database that will be published: once any file has a problem, it is left undone."""
    copiers = copiers or {}
    loaded: dict[str, LoadedTable] = {}
    checking: list[tuple[LoadedTable, Future, int | None]] = []
    following: list[Future] = []  # the after_validation work, appended to by the validation thread
    failed = Event()  # a problem in some file: the build will publish nothing

    def validate(lt: LoadedTable) -> tuple[list[Problem], set[int]]:
        found, bad = validate_staged(lt, then)
        if found:
            failed.set()
        return found, bad

    def follow(lt: LoadedTable) -> None:
        if not (failed.is_set() or problems):  # problems: the caller's list, with those the staging found
            after_validation(lt)

    try:
        with (ThreadPoolExecutor(max_workers=1, thread_name_prefix="civcas-validate") as validator,
              ThreadPoolExecutor(max_workers=1, thread_name_prefix="civcas-after-validation") as follower):
            then = None if after_validation is None else lambda lt: following.append(follower.submit(follow, lt))
            for table in tables:
                lt = loaded[table.name] = LoadedTable(table, f"{shown_dir}/{table.name}.csv")
                if stage(table, raw_dir / f"{table.name}.csv", Path(f"{staging}-{table.name}.building"), lt, problems):
                    later = table.name in copiers
                    checking.append((lt, validator.submit(validate, lt),
                                     None if later else copy_typed(conn, lt, rejected=set())))
            # The copies left for later first: the validation of the last files goes on meanwhile.
            for lt, future, copied in sorted(checking, key=lambda c: c[2] is not None):
                found, bad = future.result()
                problems += found
                if copied is None:
                    copied = copiers[lt.table.name](conn, lt, bad)
                elif bad:  # rare: copy again without the rows that had a problem
                    conn.execute(f'DELETE FROM "{lt.table.name}"')
                    copied = copy_typed(conn, lt, bad)
                if copied != len(lt.lines) - len(bad):
                    report_duplicates(conn, lt, bad, problems)
            for future in following:  # every validation has ended: no more are appended
                future.result()
    finally:
        for lt in loaded.values():
            if lt.staged is not None:
                lt.staged.unlink(missing_ok=True)
                lt.staged = None
    return loaded


def stage(table: Table, path: Path, staged: Path, loaded: LoadedTable, problems: list[Problem]) -> bool:
    """Read the file into a staging table [raw] in its own SQLite file; False when there is nothing to check."""
    if not path.is_file():
        problems.append(Problem(loaded.path, 1, "(file)", "file is missing"))
        loaded.complete = False
        return False
    header = read_header(path)
    if not check_header(table, header, loaded.path, problems):
        loaded.complete = False
        return False
    if bad := nul_lines(path):
        problems += [Problem(loaded.path, line, "(file)", "contains a NUL byte") for line in bad]
        loaded.complete = False
        return False
    staged.unlink(missing_ok=True)
    loaded.staged = staged
    # Thrown away after the build: no journal, no syncing.
    conn = new_file(staged)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(f"CREATE TABLE raw ({', '.join(map(quoted, header))})")
        before = len(problems)
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO raw VALUES ({', '.join('?' for _ in header)})",
                         read_rows(path, loaded.path, len(header), loaded.lines, problems))
        conn.execute("COMMIT")
    finally:
        conn.close()
    loaded.complete = not any(p.column in ("(file)", "(header)") or p.message.startswith("malformed CSV")
                              for p in problems[before:])
    return True


def validate_staged(loaded: LoadedTable, then: Callable[[LoadedTable], None] | None = None
                    ) -> tuple[list[Problem], set[int]]:
    """Every problem of the staged rows (cells, then rules across a row's cells) and the rowids that have one;
    then `then(loaded)` (which hands it on to another thread) if there is none.

    Runs in the validation thread, on its own read-only connection."""
    with read_only(loaded.staged) as conn:
        register_functions(conn)
        problems: list[Problem] = []
        bad = check_cells(conn, loaded, problems)
        conn.execute("CREATE TEMP TABLE rejected (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO rejected VALUES (?)", ((r,) for r in bad))
        bad |= check_row_rules(conn, loaded, problems)
    if then is not None and not problems:
        then(loaded)
    return problems, bad


def check_cells(conn: sqlite3.Connection, loaded: LoadedTable, problems: list[Problem]) -> set[int]:
    """Report every invalid cell; return the rowids of the rows holding one."""
    table, columns = loaded.table, loaded.table.raw_columns
    errors = ", ".join(f"{cell_error_sql(c)} AS [e{i}]" for i, c in enumerate(columns))
    any_error = "coalesce(" + ", ".join(f"[e{i}]" for i in range(len(columns))) + ", NULL)"
    bad_rows = conn.execute(f"SELECT * FROM (SELECT rowid AS _rowid, {errors} FROM raw) "
                            f"WHERE {any_error} IS NOT NULL").fetchall()
    bad = set()
    pk = [c.name for c in columns].index(table.pk)
    for rowid, *messages in bad_rows:
        cells = conn.execute(f"SELECT {', '.join(quoted(c.name) for c in columns)} FROM raw WHERE rowid = ?",
                             (rowid,)).fetchone()
        for column, message, text in zip(columns, messages, cells):
            if message is not None:
                problems.append(Problem(loaded.path, loaded.line_of(rowid), column.name, f"{message} ({shown(text)})"))
        if messages[pk] is None and cells[pk] != "":
            loaded.rejected.add(cells[pk])
        bad.add(rowid)
    return bad


def typed_rows(table: Table, source: str = "raw", where: str = "") -> str:
    """The staged rows with typed values under the columns' names (empty cells are NULL)."""
    typed = ", ".join(f"{typed_sql(c)} AS {quoted(c.name)}" for c in table.raw_columns)
    return f"SELECT rowid AS _rowid, {typed} FROM {source} {where}"


def rows_to_copy(table: Table, rejected: set[int]) -> str:
    """typed_rows of the staging file attached as `stage`, less the rows whose staging rowid is in `rejected`."""
    where = f"WHERE rowid NOT IN ({', '.join(map(str, sorted(rejected)))})" if rejected else ""
    return typed_rows(table, "stage.raw", where)


def check_row_rules(conn: sqlite3.Connection, loaded: LoadedTable, problems: list[Problem]) -> set[int]:
    """Report every broken rule across a row's cells (rows whose cells are all valid); return the rowids."""
    table = loaded.table
    rules = ROW_RULES.get(table.name, ())
    if not rules:
        return set()
    results = ", ".join(f"CASE WHEN {r.broken} THEN {r.message} END, CASE WHEN {r.broken} THEN civcas_shown({r.value}) END"
                        for r in rules)
    broken = " OR ".join(f"({r.broken})" for r in rules)
    rows = conn.execute(f"SELECT _rowid, {quoted(table.pk)}, {results} "
                        f"FROM ({typed_rows(table, where='WHERE rowid NOT IN (SELECT id FROM rejected)')}) WHERE {broken}")
    bad = set()
    for rowid, key, *out in rows:
        for rule, message, value in zip(rules, out[0::2], out[1::2]):
            if message is not None:
                problems.append(Problem(loaded.path, loaded.line_of(rowid), rule.column, f"{message} ({value})"))
        loaded.rejected.add(key)
        bad.add(rowid)
    return bad


def copy_typed(conn: sqlite3.Connection, loaded: LoadedTable, rejected: set[int]) -> int:
    """Copy the staged rows, less the rejected ones, into the typed table under their staging rowids; return how
    many were copied. A row whose id is already in the table is left out here and reported by report_duplicates."""
    table = loaded.table
    names = ", ".join(quoted(c.name) for c in table.raw_columns)
    with attached(conn, loaded.staged, "stage"):
        return conn.execute(f'INSERT OR IGNORE INTO main."{table.name}" (rowid, {names}) '
                            f"SELECT _rowid, {names} FROM ({rows_to_copy(table, rejected)})").rowcount


def report_duplicates(conn: sqlite3.Connection, loaded: LoadedTable, rejected: set[int], problems: list[Problem]) -> None:
    """Name the line of each row left out because its id was used before, and of the row that used it first."""
    table = loaded.table
    pk = quoted(table.pk)
    with attached(conn, loaded.staged, "stage"):
        for rowid, key, first in conn.execute(
                f'SELECT s.rowid, s.{pk}, t.rowid FROM stage.raw s JOIN main."{table.name}" t ON t.{pk} = s.{pk} '
                f"WHERE t.rowid != s.rowid").fetchall():
            if rowid not in rejected:
                problems.append(Problem(loaded.path, loaded.line_of(rowid), table.pk,
                                        f"duplicate id, first used on line {loaded.line_of(first)} ({shown(key)})"))
