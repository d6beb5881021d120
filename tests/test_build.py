"""The build from raw/: structure of the database, derived columns, and schema/docs in sync."""
from __future__ import annotations

import json
import sqlite3

from civcas import metadata as site_metadata
from civcas.schema import ALL_TABLES, BY_NAME, TABLES
from civcas.views import VIEWS
from conftest import ROOT, metadata_yml, run_build


def one(db, sql, *params):
    return db.execute(sql, params).fetchone()


# --- structure -----------------------------------------------------------------------

def test_every_declared_column_exists_with_its_type(db):
    for table in ALL_TABLES:
        actual = {r["name"]: r for r in db.execute(f"PRAGMA table_info([{table.name}])")}
        assert list(actual) == [c.name for c in table.columns], table.name
        for c in table.columns:
            assert actual[c.name]["type"] == c.sql_type, f"{table.name}.{c.name}"
            assert bool(actual[c.name]["notnull"]) == c.required, f"{table.name}.{c.name}"
        pk = [name for name, r in actual.items() if r["pk"]]
        assert pk == [table.pk], table.name


def test_foreign_keys_declared_and_clean(db):
    for table in TABLES:
        declared = {(r["from"], r["table"], r["to"]) for r in db.execute(f"PRAGMA foreign_key_list([{table.name}])")}
        assert declared == set(table.foreign_keys), table.name
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_indexes_on_filter_columns(db):
    for table in TABLES:
        indexed = set()
        for index in db.execute(f"PRAGMA index_list([{table.name}])"):
            cols = tuple(r["name"] for r in db.execute(f"PRAGMA index_info([{index['name']}])"))
            indexed.add(cols)
        for columns in table.indexes:
            assert tuple(columns) in indexed, (table.name, columns)
        for column, _, _ in table.foreign_keys:
            assert any(cols[0] == column for cols in indexed), (table.name, column)


def test_tables_and_indexes_are_those_sqlite_utils_makes(db):
    """The build runs statements sqlite-utils wrote once per process (civcas.build.schema_sql): the database has
    what sqlite-utils' own create() and create_index(if_not_exists=True) make on a database of their own."""
    import sqlite_utils

    from civcas.build import create_table

    fresh = sqlite_utils.Database(memory=True)
    for table in ALL_TABLES:
        create_table(fresh, table)
    for table in ALL_TABLES:
        for columns in table.all_indexes:
            fresh[table.name].create_index(columns, if_not_exists=True)
    query = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
    expected = fresh.execute(query).fetchall()
    assert len(expected) > len(ALL_TABLES)
    built = {r["name"]: tuple(r) for r in db.execute(query)}  # with more: search indexes, views, partial indexes
    assert [built.get(name) for _, name, _, _ in expected] == expected


def test_full_text_search_finds_the_heisha_strike(db):
    hits = db.execute("SELECT i.incident_id FROM incidents_fts JOIN incidents i ON i.rowid = incidents_fts.rowid "
                      "WHERE incidents_fts MATCH 'Heisha'").fetchall()
    assert [h[0] for h in hits] == ["sy-2016-11-08-al-heisha"]
    arabic = db.execute("SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH ?", ("الهيشة",)).fetchone()[0]
    assert arabic == 1
    assert one(db, "SELECT count(*) FROM figures_fts WHERE figures_fts MATCH 'women'")[0] > 0
    assert one(db, "SELECT count(*) FROM sources_fts WHERE sources_fts MATCH 'Raqqa'")[0] > 0
    for table in TABLES:
        if table.fts:
            fts_rows = one(db, f"SELECT count(*) FROM [{table.name}_fts]")[0]
            assert fts_rows == one(db, f"SELECT count(*) FROM [{table.name}]")[0], table.name


def search_index_differences(path) -> list[str]:
    """Compare each search table's index (built beside the build and moved in, civcas.search) with the index
    FTS5 itself makes from the content table, in a copy of the file opened in memory."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn = sqlite3.connect(":memory:")
    source.backup(conn)
    source.close()
    differences = []
    for table in TABLES:
        if not table.fts:
            continue
        columns = ", ".join(f"[{c}]" for c in table.fts)
        conn.execute(f"CREATE VIRTUAL TABLE reference USING FTS5 ({columns}, tokenize='porter', content=[{table.name}])")
        conn.execute(f"INSERT INTO reference (rowid, {columns}) SELECT rowid, {columns} FROM [{table.name}]")
        for shadow in ("data", "idx", "docsize", "config"):
            moved = conn.execute(f"SELECT * FROM [{table.name}_fts_{shadow}] ORDER BY 1, 2").fetchall()
            made = conn.execute(f"SELECT * FROM reference_{shadow} ORDER BY 1, 2").fetchall()
            if moved != made:
                differences.append(f"{table.name}_fts_{shadow}: {len(moved)} rows, FTS5 makes {len(made)}")
        conn.execute("DROP TABLE reference")
    conn.close()
    return differences


def test_search_indexes_are_the_ones_fts5_makes(built_db, synthetic_db):
    assert search_index_differences(built_db) == []
    assert search_index_differences(synthetic_db) == []


def test_views_have_their_declared_columns(db):
    for view in VIEWS:
        columns = [r["name"] for r in db.execute(f"PRAGMA table_info([{view.name}])")]
        assert columns == list(view.columns), view.name
        assert one(db, f"SELECT count(*) FROM [{view.name}]")[0] > 0, view.name


def test_build_info_records_the_build(db):
    info = one(db, "SELECT * FROM build_info")
    assert info["schema_version"]
    assert len(info["raw_sha256"]) == 64
    counts = json.loads(info["row_counts"])
    for table in TABLES:
        assert counts[table.name] == one(db, f"SELECT count(*) FROM [{table.name}]")[0]


def test_dictionary_tables_match_the_schema(db):
    rows = db.execute("SELECT table_name, column_name, description FROM data_dictionary ORDER BY table_name, position").fetchall()
    expected = sorted(((t.name, c.name, c.description) for t in ALL_TABLES for c in t.columns), key=lambda r: r[:1])
    assert sorted(map(tuple, rows)) == sorted(expected)
    codes = {(r["table_name"], r["column_name"], r["code"]) for r in db.execute("SELECT * FROM codes")}
    assert ("incidents", "grading", "contested") in codes
    assert ("incidents", "date_precision", "2") in codes


# --- derived values --------------------------------------------------------------------

def test_incident_place_columns_come_from_places(db):
    rows = db.execute("SELECT i.place, i.place_local, i.country, i.admin1, i.latitude, i.longitude, i.geo_precision, "
                      "p.name, p.name_local, p.country, p.admin1, p.latitude, p.longitude, p.geo_precision "
                      "FROM incidents i JOIN places p ON p.place_id = i.place_id").fetchall()
    assert rows
    for r in rows:
        assert tuple(r)[:7] == tuple(r)[7:]


def test_derived_ranges_follow_the_published_rule(db):
    """Recompute every incident's ranges from its current claims, independently of the build's SQL."""
    for incident in db.execute("SELECT * FROM incidents"):
        for metric in ("civilians_killed", "civilians_injured", "children_killed", "women_killed"):
            claims = db.execute("SELECT value_min, value_max, qualifier FROM figures "
                                "WHERE incident_id = ? AND metric = ? AND superseded_by IS NULL",
                                (incident["incident_id"], metric)).fetchall()
            lows = [c["value_min"] for c in claims if c["value_min"] is not None]
            bounded = [c["value_max"] for c in claims if c["qualifier"] not in ("at least", "more than") and c["value_max"] is not None]
            open_lows = [c["value_min"] for c in claims if c["qualifier"] in ("at least", "more than")]
            expected_max = max(bounded) if bounded else None
            if open_lows and (expected_max is None or max(open_lows) >= expected_max):
                expected_max = None
            assert incident[f"{metric}_min"] == (min(lows) if lows else None), (incident["incident_id"], metric)
            assert incident[f"{metric}_max"] == expected_max, (incident["incident_id"], metric)


def test_heisha_ranges(db):
    i = one(db, "SELECT * FROM incidents WHERE incident_id = 'sy-2016-11-08-al-heisha'")
    # SOHR's first toll (16) was superseded by its own 20; RBSS and residents said 23.
    assert (i["civilians_killed_min"], i["civilians_killed_max"]) == (20, 23)
    # The BBC's "six women and a child" (SOHR relayed) is superseded by SOHR's own nine women and two children.
    assert (i["women_killed_min"], i["women_killed_max"]) == (9, 9)
    assert (i["children_killed_min"], i["children_killed_max"]) == (2, 2)
    # About 30 (BBC, AP, SOHR) to 'at least 32' (AFP Arabic): the upper bound is open.
    assert (i["civilians_injured_min"], i["civilians_injured_max"]) == (30, None)
    assert i["provisional"] == 0 and i["claimants_count"] >= 2


def test_open_ended_claim_never_becomes_a_number(tmp_path, raw_copy):
    """An incident whose only claim is 'more than N' gets a NULL maximum, not N."""
    figures = raw_copy / "figures.csv"
    text = figures.read_text(encoding="utf-8")
    with open(figures, "a", encoding="utf-8") as f:
        f.write("test-open-ended,iq-2016-10-22-fadhiliya,guardian-2016-11-01-fadhiliya,yousuf-family,civilians_injured,"
                "5,,more than,,,,,,,more than five were hurt,,\n")
    assert text.endswith("\n")
    out = tmp_path / "civcas.db"
    result = run_build("--raw", str(raw_copy), "--db", str(out))
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(out)
    row = conn.execute("SELECT civilians_injured_min, civilians_injured_max FROM incidents "
                       "WHERE incident_id = 'iq-2016-10-22-fadhiliya'").fetchone()
    assert row == (5, None)


def test_unknown_is_null_not_zero(db):
    fadhiliya = one(db, "SELECT * FROM incidents WHERE incident_id = 'iq-2016-10-22-fadhiliya'")
    assert fadhiliya["civilians_injured_min"] is None and fadhiliya["civilians_injured_max"] is None
    assert fadhiliya["women_killed_max"] is None  # 'a pregnant woman': at least one


def test_figure_provisional_flag(db):
    single = one(db, "SELECT provisional FROM figures WHERE figure_id = 'syriadirect-heisha-lcc'")[0]
    shared = one(db, "SELECT provisional FROM figures WHERE figure_id = 'afp-heisha-sohr-killed'")[0]
    assert (single, shared) == (1, 0)


def test_popup_is_escaped_json_with_a_link(db):
    for r in db.execute("SELECT incident_id, title, popup FROM incidents"):
        popup = json.loads(r["popup"])
        assert popup["title"] == r["title"]
        assert popup["link"] == f"/civcas/incidents/{r['incident_id']}"


# --- one declaration, everywhere ---------------------------------------------------------

def test_generated_files_are_in_sync_with_the_schema():
    """metadata.yml and docs/data-dictionary.md are exactly what civcas.metadata generates."""
    assert (ROOT / "metadata.yml").read_text(encoding="utf-8") == site_metadata.render_metadata(), "run `make metadata`"
    assert (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8") == site_metadata.render_dictionary(), "run `make metadata`"


def test_metadata_describes_every_table_and_column(built_db):
    meta = metadata_yml()
    tables = meta["databases"]["civcas"]["tables"]
    conn = sqlite3.connect(built_db)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE '%_fts%' "
        "AND name NOT LIKE 'sqlite_%'")]
    for name in names:
        assert tables.get(name, {}).get("description"), name
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info([{name}])")]
        assert set(tables[name]["columns"]) == set(columns), name
        assert all(tables[name]["columns"].values()), name


def test_dictionary_lists_every_allowed_value():
    text = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    for table in ALL_TABLES:
        assert f"## `{table.name}`" in text
        for c in table.columns:
            assert f"| `{c.name}` |" in text
            for value in c.values or {}:
                assert f"`{value}`" in text, (table.name, c.name, value)


def test_raw_files_have_exactly_the_declared_columns():
    for table in TABLES:
        header = (ROOT / "raw" / f"{table.name}.csv").read_text(encoding="utf-8-sig").splitlines()[0]
        assert header.split(",") == [c.name for c in BY_NAME[table.name].raw_columns], table.name


def test_no_table_is_written_once_its_checksum_is_being_taken():
    # Once the derive step has committed, the build takes the checksums of every data table beside the later steps
    # (civcas.build); the build's connection is refused any write to them from then on.
    from civcas.load import writes_refused

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE incidents (x)")
    conn.execute("CREATE TABLE disagreement_groups (x)")
    with writes_refused(conn, {"incidents"}):
        conn.execute("INSERT INTO disagreement_groups VALUES (1)")
        conn.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS x")
        for sql in ("INSERT INTO incidents VALUES (1)", "UPDATE incidents SET x = 2", "DELETE FROM incidents"):
            try:
                conn.execute(sql)
            except sqlite3.DatabaseError as e:
                assert "not authorized" in str(e)
            else:
                raise AssertionError(f"allowed: {sql}")
    conn.execute("INSERT INTO incidents VALUES (1)")  # outside, as before


def test_build_py_turns_off_sqlite_memory_statistics():
    # They serialise every allocation of every connection (civcas.build.stop_sqlite_memory_statistics): off in the
    # build process, SQLite counts no memory, and connections work as before.
    import subprocess
    import sys

    program = """
import ctypes, sqlite3, _sqlite3
from civcas.build import stop_sqlite_memory_statistics
lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_memory_used.restype = ctypes.c_int64
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
assert lib.sqlite3_memory_used() > 0
conn.close()
assert stop_sqlite_memory_statistics()
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
conn.executemany("INSERT INTO t VALUES (?)", ((i,) for i in range(1000)))
assert conn.execute("SELECT sum(x) FROM t").fetchone() == (499500,)
assert lib.sqlite3_memory_used() == 0, lib.sqlite3_memory_used()
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "stop_sqlite_memory_statistics()" in (ROOT / "build.py").read_text()


def test_threads_beside_the_build_run_at_a_lower_priority_than_it():
    # The main thread's steps are the build's critical path (civcas.build.lower_priority; docs/performance.md).
    import os
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from civcas.build import BESIDE_NICENESS, lower_priority

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = niceness()
    with ThreadPoolExecutor(1, initializer=lower_priority, initargs=(BESIDE_NICENESS,)) as beside:
        assert beside.submit(niceness).result() == min(before + BESIDE_NICENESS, 19)
    assert niceness() == before


def test_loading_hands_each_valid_table_on_once_and_waits_for_that_work(tmp_path):
    # civcas.load.load_tables: `after_validation` runs in a thread of its own, once per valid table, and has ended
    # (errors included) by the time load_tables returns, so the staging files it reads still exist while it runs.
    import shutil
    import threading

    import pytest

    from civcas.load import load_tables, new_file
    from civcas.schema import TABLES as ALL

    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "raw", raw)
    conn = new_file(tmp_path / "t.db")
    for table in ALL:
        conn.execute(f'CREATE TABLE "{table.name}" ({", ".join(f"[{c.name}]" for c in table.raw_columns)}, '
                     f"UNIQUE ([{table.pk}]))")
    seen: list[tuple[str, str, bool]] = []

    def after(lt) -> None:
        seen.append((lt.table.name, threading.current_thread().name, lt.staged.exists()))

    problems: list = []
    load_tables(conn, ALL, raw, "raw", tmp_path / "stage", problems, after_validation=after)
    assert problems == []
    assert sorted(name for name, _, _ in seen) == sorted(t.name for t in ALL)
    assert all(thread.startswith("civcas-after-validation") and exists for _, thread, exists in seen)

    def fails(lt) -> None:
        if lt.table.name == "figures":
            raise RuntimeError("after figures")

    for table in ALL:
        conn.execute(f'DELETE FROM "{table.name}"')
    with pytest.raises(RuntimeError, match="after figures"):
        load_tables(conn, ALL, raw, "raw", tmp_path / "stage", [], after_validation=fails)
    assert not list(tmp_path.glob("stage-*")), "staging files left behind"
