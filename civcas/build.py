"""Build civcas.db from raw/*.csv, top to bottom.

The database is built into a temporary file beside the target and renamed
over it only when every file is valid and every step has finished, so the
published database is never half-built and never replaced by a bad build.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlite_utils

from .checks import check_all
from .checksum import CHECKED, combined, data_checksums
from .release import current_release
from .derive import DERIVE_WRITES, copy_incidents, derive_after_load, derive_all
from .pagedata import derive_page_data
from .search import SEARCHED_AFTER_LOAD, SEARCHED_FROM_STAGING, build_search_file, index_staged, move_search_tables
from .summaries import FILLED_BESIDE, build_summary_file, derive_summaries, move_summaries
from .load import LoadedTable, copy_typed, load_tables, new_file, read_only, register_functions, writes_refused
from .schema import ALL_TABLES, CODES, DATA_DICTIONARY, FACET_COUNTS, INCIDENTS, SCHEMA_VERSION, SUMMARIES, TABLES, BUILD_INFO, Table
from .validate import Problem
from .views import VIEWS

PY_TYPES = {"TEXT": str, "INTEGER": int, "REAL": float}
SQLITE_CONFIG_MEMSTATUS = 9  # sqlite3.h
# How much lower than the main thread's the scheduling priority of the threads beside it is (a Linux nice value):
# the main thread's steps are the critical path, and the work beside it should use what they leave.
BESIDE_NICENESS = 10


def stop_sqlite_memory_statistics() -> bool:
    """Turn off SQLite's memory statistics in this process; True if it could. Call it before any connection opens.

    With them on (SQLite's default), every allocation of every connection takes one process-wide lock: two
    threads each running a sort took 1.8 x as long as one alone (and two processes no longer than one). The
    build reads and writes on up to five connections at once, so it turns them off, through sqlite3_config(),
    which Python's sqlite3 module does not expose; the library it links to is reached with ctypes. Only build.py
    run as a program does this: sqlite3_shutdown() must not run while a connection is open, as one may be in a
    process that calls main() (the tests). Without the statistics `PRAGMA soft_heap_limit` is not enforced; the
    build's memory is bounded by its page caches and sorters instead (docs/performance.md)."""
    try:
        import _sqlite3
        import ctypes

        lib = ctypes.CDLL(_sqlite3.__file__)  # its symbols include those of the SQLite library it links to
        return (lib.sqlite3_shutdown() == 0
                and lib.sqlite3_config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == 0
                and lib.sqlite3_initialize() == 0)
    except (ImportError, OSError, AttributeError):
        return False


# When each table's rows are final, so that its checksum can be taken beside the next steps: once loaded (all but
# those the derive step writes), once the derive step has committed, and at the end (the summary tables and the
# facet counts; the data dictionary is written with the derive step).
FINAL_AT_END = SUMMARIES + (FACET_COUNTS,)
FINAL_AFTER_LOAD = tuple(t for t in TABLES if t.name not in DERIVE_WRITES)
FINAL_AFTER_DERIVE = tuple(t for t in CHECKED if t not in FINAL_AT_END and t not in FINAL_AFTER_LOAD)


def lower_priority(niceness: int) -> None:
    """Lower the scheduling priority of the calling thread by `niceness`. Only on Linux, which schedules threads
    one by one and takes a thread's id where setpriority() takes a process id (elsewhere that id could name
    another process)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + niceness)
    except (AttributeError, OSError):
        pass


def create_table(db: sqlite_utils.Database, table: Table) -> None:
    db[table.name].create(
        {c.name: PY_TYPES[c.sql_type] for c in table.columns},
        pk=table.pk,
        not_null={c.name for c in table.columns if c.required},
        foreign_keys=table.foreign_keys,
        defaults={c.name: c.default for c in table.columns if c.default is not None},
    )


@functools.cache
def schema_sql() -> tuple[dict[str, str], dict[tuple[str, tuple[str, ...]], tuple[str, str]]]:
    """The CREATE TABLE statement of every table and the name and CREATE INDEX statement of every declared index,
    as sqlite-utils writes them, made once per process in an empty database in memory. sqlite-utils looks up every
    table a new table or index refers to (~540 queries for the schema, ~12 ms of a small build); a process that
    builds many times (the tests, bench.phases) pays that once. Every build runs the same statements."""
    db = sqlite_utils.Database(memory=True)
    indexes = {}
    for table in ALL_TABLES:
        create_table(db, table)
    for table in ALL_TABLES:
        for columns in table.all_indexes:
            before = {i.name for i in db[table.name].indexes}
            db[table.name].create_index(columns)
            (name,) = {i.name for i in db[table.name].indexes} - before
            indexes[table.name, tuple(columns)] = name, db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", [name]).fetchone()[0]
    tables = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    return {t.name: tables[t.name] for t in ALL_TABLES}, indexes


def create_tables(conn: sqlite3.Connection) -> None:
    for sql in schema_sql()[0].values():
        conn.execute(sql)


def check_file(path: Path, loaded: dict[str, LoadedTable]) -> list[Problem]:
    """The cross-row checks, on a read-only connection of their own."""
    with read_only(path) as conn:
        return check_all(conn, loaded)


def in_file_order(problems: list[Problem], shown_dir: str) -> list[Problem]:
    """Problems in load order of the files (not alphabetical), then line, then column."""
    order = {f"{shown_dir}/{t.name}.csv": i for i, t in enumerate(TABLES)}
    return sorted(problems, key=lambda p: (order.get(p.path, 99), p.line, p.column))


def create_indexes(db: sqlite_utils.Database, read_by_checks: bool = False) -> None:
    """Every declared index not yet made (schema_sql). read_by_checks: only those on raw columns, which the
    cross-row checks read, so that the checks can start beside the rest."""
    made = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    statements = schema_sql()[1]
    for table in ALL_TABLES:
        derived_names = {c.name for c in table.derived_columns}
        for columns in table.all_indexes:
            if read_by_checks and derived_names.intersection(columns):
                continue
            name, sql = statements[table.name, tuple(columns)]
            if name not in made:
                db.execute(sql)


def create_views(db: sqlite_utils.Database) -> None:
    for view in VIEWS:
        db.create_view(view.name, view.sql.strip(), replace=True)


def write_dictionary(db: sqlite_utils.Database) -> None:
    entries, codes = [], []
    for table in ALL_TABLES:
        for position, c in enumerate(table.columns, start=1):
            entries.append({
                "id": f"{table.name}.{c.name}", "table_name": table.name, "column_name": c.name,
                "position": position, "sql_type": c.sql_type, "kind": c.kind, "required": int(c.required),
                "derived_from": c.derived, "refers_to": c.references,
                "allowed_values": " | ".join(map(str, c.values)) if c.values else None,
                "null_means": None if c.required else c.null_means, "description": c.description,
            })
            for code, meaning in (c.values or {}).items():
                codes.append({"id": f"{table.name}.{c.name}.{code}", "table_name": table.name,
                              "column_name": c.name, "code": str(code), "meaning": meaning})
    db[DATA_DICTIONARY.name].insert_all(entries)
    db[CODES.name].insert_all(codes)


def raw_digest(raw_dir: Path) -> str:
    digest = hashlib.sha256()
    for table in TABLES:
        with open(raw_dir / f"{table.name}.csv", "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def source_commit(raw_dir: Path) -> str | None:
    if os.environ.get("CIVCAS_SOURCE_COMMIT"):
        return os.environ["CIVCAS_SOURCE_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(raw_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def built_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds.org) fixes the time, so two builds of the same raw files give
    # the same file byte for byte.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch else dt.datetime.now(dt.timezone.utc)
    return when.isoformat(timespec="seconds")


def source_repository(raw_dir: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(raw_dir), "remote", "get-url", "origin"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    url = out.stdout.strip() if out.returncode == 0 else ""
    # Only a public address: never a local path or credentials embedded in the URL.
    return url if url.startswith("https://") and "@" not in url else None


def checksum_file(path: Path, tables: tuple[Table, ...]) -> dict[str, str]:
    # checked_types: the build writes only TEXT, INTEGER or NULL in columns not declared REAL (civcas.checksum).
    with read_only(path) as conn:
        return data_checksums(conn, tables, checked_types=True)


def write_build_info(db: sqlite_utils.Database, raw_dir: Path, tables: dict[str, str], raw_sha256: str) -> dict[str, int]:
    counts = {t.name: db[t.name].count for t in ALL_TABLES if t is not BUILD_INFO}
    data_sha256 = combined(tables)
    db[BUILD_INFO.name].insert({
        "built_at": built_at(), "schema_version": SCHEMA_VERSION, "source_commit": source_commit(raw_dir),
        "source_repository": source_repository(raw_dir), "release": current_release(), "data_version": data_sha256[:12],
        "raw_sha256": raw_sha256, "data_sha256": data_sha256,
        "table_sha256": json.dumps(tables, sort_keys=True), "row_counts": json.dumps(counts),
    })
    return counts


def remove_stale_builds(workdir: Path, stem: str) -> None:
    """Delete temporary files of builds that were killed: their pid, in the name, is no longer running."""
    for path in workdir.glob(f".{stem}-*.building*"):  # the database, its journal, the staging files
        try:
            pid = int(path.name[len(stem) + 2:].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def build(raw_dir: Path, db_path: Path, shown_dir: str | None = None, check_only: bool = False,
          database_name: str | None = None) -> tuple[list[Problem], dict[str, int]]:
    """Validate raw_dir and, unless check_only, replace db_path with a fresh build.

    Returns the problems (empty on success) and the row counts.
    """
    shown_dir = shown_dir or str(raw_dir).rstrip("/")
    database_name = database_name or db_path.stem
    workdir = Path(tempfile.gettempdir()) if check_only else db_path.resolve().parent
    workdir.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(workdir, db_path.stem)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.stem}-{os.getpid()}-", suffix=".building", dir=workdir)
    os.close(fd)
    tmp = Path(tmp_name)
    scratch = workdir / f".{db_path.stem}-{os.getpid()}"  # prefix of the build's other temporary files
    search_file = scratch.with_name(scratch.name + "-search.building")
    summary_files = {name: scratch.with_name(f"{scratch.name}-summary-{name}.building") for name in FILLED_BESIDE}
    search_file.unlink(missing_ok=True)
    conn = None
    try:
        conn = new_file(tmp)
        # The temporary file is thrown away on any failure, so durability buys little here, and one transaction
        # per step is enough. The journal is on disk, not in memory: a journal in memory holds every page the
        # derive updates touch (864 MB peak at 1M incidents, 258 MB on disk; docs/performance.md).
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = OFF")
        # 32 MB: SQLite sizes each sorter from it, and the derive runs several at once (peak RSS, docs/performance.md).
        conn.execute("PRAGMA cache_size = -32768")
        db = sqlite_utils.Database(conn)
        create_tables(conn)
        problems: list[Problem] = []
        derive_failed: list[sqlite3.Error] = []  # reported only if the checks find nothing (see below)

        def copy_incidents_derived(conn: sqlite3.Connection, lt: LoadedTable, rejected: set[int]) -> int:
            try:
                return copy_incidents(conn, lt, rejected, database_name)
            except sqlite3.Error as e:  # the checks still need the rows
                derive_failed.append(e)
                return copy_typed(conn, lt, rejected)

        def index_for_search(lt: LoadedTable) -> None:
            if lt.table in SEARCHED_FROM_STAGING:
                index_staged(lt.staged, lt.table, search_file)

        def derived(*steps: Callable[[], None]) -> bool:
            """Run the steps in one write transaction. An error (e.g. a constraint broken by a dangling reference
            the checks report) undoes it and is kept in derive_failed: the checks' problems, if any, come first."""
            if derive_failed:
                return False
            try:
                conn.execute("BEGIN IMMEDIATE")
                for step in steps:
                    step()
                conn.execute("COMMIT")
                return True
            except sqlite3.Error as e:
                derive_failed.append(e)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return False

        register_functions(conn)
        loaded = load_tables(conn, TABLES, raw_dir, shown_dir, scratch.with_name(scratch.name + "-stage"), problems,
                             copiers={INCIDENTS.name: copy_incidents_derived}, after_validation=index_for_search)
        if not problems:
            derived(lambda: derive_after_load(conn))
        # From here other threads read the file on connections of their own while this one writes (WAL lets them),
        # at a lower priority (lower_priority): this thread's steps are the critical path. They take the checksums
        # of tables as soon as their rows are final, and this connection may write those tables no more
        # (writes_refused): the tables final once loaded, then figures once the derive step has committed.
        # Beside the indexes: the incidents' full-text index (into the scratch file where the loading indexed the
        # other tables, civcas.search); once the indexes they read exist, the cross-row checks and the summary
        # tables that read every figure (each into a scratch file of its own, civcas.summaries; they read no
        # column the derive step writes), beside the rest of the build (thrown away if the checks find a problem).
        # From the indexes on, both cores are busy until the end whatever the order (docs/performance.md): the
        # build is as fast as its total work allows.
        # Every write transaction of this connection is BEGIN IMMEDIATE: a reader opening the file in WAL mode may
        # hold the write lock for a moment (to rebuild the WAL index), and a deferred transaction that has already
        # read cannot wait for it (SQLite answers "database is locked" at once), while one that asks for the lock
        # first waits (the connection's 5 s busy timeout).
        conn.execute("PRAGMA journal_mode = WAL")
        final = {t.name for t in FINAL_AFTER_LOAD}
        with (ThreadPoolExecutor(max_workers=7, thread_name_prefix="civcas-beside", initializer=lower_priority,
                                 initargs=(BESIDE_NICENESS,)) as beside,
              writes_refused(conn, final)):
            if not problems:
                loaded_sums = beside.submit(checksum_file, tmp, FINAL_AFTER_LOAD)
                searched = beside.submit(build_search_file, tmp, search_file, SEARCHED_AFTER_LOAD)
                raw_sha256 = beside.submit(raw_digest, raw_dir)
            # The cross-row checks and the derive step read the tables through these.
            conn.execute("BEGIN IMMEDIATE")
            create_indexes(db, read_by_checks=True)
            conn.execute("COMMIT")
            checking = beside.submit(check_file, tmp, loaded)
            if not problems:
                summarised = {name: beside.submit(build_summary_file, tmp, summary_files[name], name)
                              for name in FILLED_BESIDE}
                derived(lambda: derive_all(conn), lambda: create_views(db), lambda: write_dictionary(db))
                final.update(t.name for t in FINAL_AFTER_DERIVE)
                derived_sums = beside.submit(checksum_file, tmp, FINAL_AFTER_DERIVE)
                # While the checks finish (all of it is thrown away with the file if they find a problem): the
                # search index built beside, moved in; the small summary tables, the indexes on derived columns and
                # the facet counts (which read them); then the query planner's statistics, while the large summary
                # tables are still being filled beside (theirs, and build_info's, once they are in).
                move_search_tables(conn, searched.result())
                if derived(lambda: derive_summaries(conn), lambda: create_indexes(db), lambda: derive_page_data(conn)):
                    conn.execute("ANALYZE")
            problems += checking.result()
            if problems:
                return in_file_order(problems, shown_dir), {}
            del loaded  # the line numbers were for messages: ~24 MB at 1M incidents
            if derive_failed:
                raise derive_failed[0]  # the data passed every check: a bug in the build, not in the data
            filled = {name: filling.result() for name, filling in summarised.items()}
            move_summaries(conn, {name: path for name, (path, _) in filled.items()})
            checksums = {name: checksum for name, (_, checksum) in filled.items()}
            checksums |= data_checksums(conn, tuple(t for t in FINAL_AT_END if t.name not in filled), checked_types=True)
            checksums |= loaded_sums.result() | derived_sums.result()
            if set(checksums) != {t.name for t in CHECKED}:
                raise RuntimeError(f"tables without a checksum: {sorted({t.name for t in CHECKED} - set(checksums))}")
            conn.execute("BEGIN IMMEDIATE")
            counts = write_build_info(db, raw_dir, checksums, raw_sha256.result())
            conn.execute("COMMIT")
        # No PRAGMA foreign_key_check here: check_references has proved every reference row by row
        # (tests/invariants.py re-checks it from the outside).
        for name in (*FILLED_BESIDE, BUILD_INFO.name):
            conn.execute(f'ANALYZE main."{name}"')
        conn.execute("PRAGMA journal_mode = DELETE")  # checkpoints the WAL into the file: one file to publish
        conn.close()
        conn = None
        if not check_only:
            os.replace(tmp, db_path)
        return [], counts
    finally:
        if conn is not None:
            conn.close()
        for leftover in ("", "-wal", "-shm", "-journal"):  # the file and whatever SQLite kept beside it
            Path(f"{tmp}{leftover}").unlink(missing_ok=True)
        search_file.unlink(missing_ok=True)
        for path in summary_files.values():
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="raw", help="folder holding the raw CSV files (default: raw)")
    parser.add_argument("--db", default="civcas.db", help="database to write (default: civcas.db)")
    parser.add_argument("--check", action="store_true", help="validate only; write nothing")
    args = parser.parse_args(argv)
    raw_dir, db_path = Path(args.raw), Path(args.db)
    if not raw_dir.is_dir():
        print(f"{args.raw}: no such folder", file=sys.stderr)
        return 2
    problems, counts = build(raw_dir, db_path, shown_dir=args.raw.rstrip("/"), check_only=args.check)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        kept = "nothing written" if args.check else f"{args.db} left unchanged"
        print(f"{len(problems)} problem{'s' * (len(problems) != 1)} found; {kept}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {t}" for t, n in counts.items() if t in {x.name for x in TABLES})
    print(f"{'valid' if args.check else 'built ' + args.db}: {summary}", file=sys.stderr)
    return 0
