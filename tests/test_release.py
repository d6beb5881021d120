"""Releases that can be verified and rebuilt, builds that can be killed, and new builds under a running site."""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from civcas.checksum import table_sha256, verify
from conftest import RAW, ROOT, serving

BUILD = [sys.executable, str(ROOT / "build.py")]


def build(raw: Path, db: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([*BUILD, "--raw", str(raw), "--db", str(db)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def info(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("select * from build_info").fetchone())
    finally:
        conn.close()


# --- reproducible ---------------------------------------------------------------------------------


def test_two_builds_of_the_same_raw_files_are_identical(tmp_path, built_db):
    a, b = tmp_path / "a" / "civcas.db", tmp_path / "b" / "civcas.db"
    for db in (a, b):
        db.parent.mkdir()
        assert build(RAW, db, SOURCE_DATE_EPOCH="1700000000").returncode == 0
    assert sha256(a) == sha256(b), "same raw files, same SOURCE_DATE_EPOCH: the files should be byte-identical"
    # Without a fixed time only built_at differs: every table checksum is the same (built_db: the session's
    # build.py --raw raw/, with no SOURCE_DATE_EPOCH).
    c = built_db
    assert info(c)["data_sha256"] == info(a)["data_sha256"]
    assert info(c)["table_sha256"] == info(a)["table_sha256"]
    assert info(c)["raw_sha256"] == info(a)["raw_sha256"]


def test_the_checksums_the_build_takes_are_the_ones_a_downloader_computes(synthetic_db):
    # The build hashes without looking for BLOBs or REAL values in other columns (checked_types=True); recomputed
    # the long way from the file, every table of a 10,000-incident build (every summary table filled) agrees.
    assert verify(str(synthetic_db)) == []


def test_a_downloader_can_verify_a_database(tmp_path, built_db):
    db = tmp_path / "civcas.db"
    shutil.copyfile(built_db, db)  # what build.py --raw raw/ wrote, copied so it can be edited
    assert verify(str(db)) == []
    result = subprocess.run([sys.executable, "-m", "civcas.checksum", str(db)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Any edit to the data after the build is caught, naming the table.
    conn = sqlite3.connect(db)
    conn.execute("update figures set value_min = value_min + 1 where figure_id = (select min(figure_id) from figures)")
    conn.commit()
    conn.close()
    problems = verify(str(db))
    assert problems and problems[0].startswith("figures:")
    result = subprocess.run([sys.executable, "-m", "civcas.checksum", str(db)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "does NOT match" in result.stderr


def _checksum_of(rows: list[tuple], checked_types: bool = False) -> str:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, x REAL, s TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    return table_sha256(conn, "t", "id", checked_types)


EDGE_ROWS = [("a", 1, 0.1, "tab\tnl\n\"q\" \\ é 中文 🙂 \x01\x7f\u2028"), ("b", None, None, None), ("c", -2**63, 1e300, ""),
             ("d", 2**63 - 1, -0.0, "null"), ("e", 0, 36.123456789012345, "[1]")]


def test_checksums_tell_every_value_and_type_apart():
    base = _checksum_of(EDGE_ROWS)
    # The build's fast path (no scan for odd values) gives the same checksum as a downloader's.
    assert _checksum_of(EDGE_ROWS, checked_types=True) == base
    # Primary-key order, not insertion order.
    assert _checksum_of(list(reversed(EDGE_ROWS))) == base
    changed = [
        ("b", None, None, ""),             # NULL text -> empty text
        ("b", None, None, "None"),
        ("b", "one", None, None),          # text where an integer was NULL
        ("b", None, 0.0, None),            # 0.0 where a REAL was NULL
        ("b", None, b"", None),            # an empty BLOB in a REAL column
        ("b", None, None, b"null"),        # a BLOB in a TEXT column (json_array cannot hold it)
        ("b", 0.5, None, None),            # a REAL in an INTEGER column
    ]
    seen = {base}
    for row in changed:
        digest = _checksum_of([r if r[0] != "b" else row for r in EDGE_ROWS])
        assert digest not in seen, row
        seen.add(digest)
    # A REAL in a column not declared REAL is hashed exactly (json_array would keep 15 digits).
    near = [_checksum_of([("a", v, None, None)]) for v in (0.1, 0.10000000000000002)]
    assert near[0] != near[1]
    # A REAL column keeps every digit too.
    assert _checksum_of([("a", None, 0.1, None)]) != _checksum_of([("a", None, 0.10000000000000002, None)])


def test_build_info_names_its_inputs(built_db):
    row = info(built_db)
    digest = hashlib.sha256()
    from civcas.schema import TABLES
    for table in TABLES:
        digest.update((RAW / f"{table.name}.csv").read_bytes())
    assert row["raw_sha256"] == digest.hexdigest()
    assert set(json.loads(row["table_sha256"])) >= {"incidents", "figures", "sources"}


# --- killed builds ----------------------------------------------------------------------------------


def changed_raw(tmp_path: Path) -> Path:
    """A valid raw folder that differs from raw/ (one title), so the old and new databases can be told apart."""
    raw = tmp_path / "raw-new"
    shutil.copytree(RAW, raw)
    text = (raw / "incidents.csv").read_text(encoding="utf-8")
    (raw / "incidents.csv").write_text(text.replace("Air strikes on al-Heisha", "Air strikes on al-Heisha (rev)", 1),
                                       encoding="utf-8")
    return raw


def test_a_killed_build_never_breaks_the_published_database(tmp_path, built_db):
    db = tmp_path / "civcas.db"
    shutil.copyfile(built_db, db)  # the published database: build.py --raw raw/
    old = sha256(db)
    raw_new = changed_raw(tmp_path)
    started = time.monotonic()
    assert build(raw_new, tmp_path / "probe.db").returncode == 0
    duration = time.monotonic() - started
    rng = random.Random(20161109)
    outcomes = set()
    for attempt in range(10):
        proc = subprocess.Popen([*BUILD, "--raw", str(raw_new), "--db", str(db)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill anywhere from start-up to just after the final rename
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The published file is the old database or the complete new one, never anything else.
        assert db.exists()
        now = sha256(db)
        if now == old:
            outcomes.add("old")
        else:
            assert verify(str(db)) == [], f"attempt {attempt}: a half-written database was published"
            assert sqlite3.connect(db).execute("pragma integrity_check").fetchone()[0] == "ok"
            outcomes.add("new")
            shutil.copyfile(built_db, db)  # back to the old content (build.py --raw raw/) for the next attempt
            old = sha256(db)
    # The next build succeeds with no clean-up, and removes what killed builds left behind.
    assert build(raw_new, db).returncode == 0
    assert verify(str(db)) == []
    assert list(tmp_path.glob(".civcas-*.building")) == []
    assert "old" in outcomes, outcomes


def test_stale_temporary_files_of_dead_builds_are_removed(tmp_path):
    db = tmp_path / "civcas.db"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".civcas-{dead.pid}-abc123.building"
    stale.write_bytes(b"half a database")
    live = tmp_path / f".civcas-{os.getpid()}-def456.building"  # a running process's: left alone
    live.write_bytes(b"in progress")
    assert build(RAW, db).returncode == 0
    assert not stale.exists() and live.exists()


# --- a new build under a running site -------------------------------------------------------------------


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.browser
def test_a_running_site_keeps_serving_its_snapshot_until_restarted(tmp_path, built_db):
    """serve.sh serves a hard-linked snapshot of civcas.db: a build that replaces the file mid-flight changes
    nothing the running site answers (no half-written file, no mix of old counts and new rows); a restart
    serves the new build."""
    db = tmp_path / "civcas.db"
    shutil.copyfile(built_db, db)  # the published database: build.py --raw raw/
    sql = "select title from incidents where incident_id = 'sy-2016-11-08-al-heisha'"
    url = "/civcas.json?_shape=array&sql=" + urllib.request.quote(sql)
    with serving(db, tmp_path) as (base, _pid):
        before = get_json(base + url)
        count_before = get_json(base + "/civcas/incidents.json?_size=1")["filtered_table_rows_count"]
        assert build(changed_raw(tmp_path), db).returncode == 0  # replaces civcas.db under the server
        for _ in range(12):  # every SQL thread, old and new connections alike
            assert get_json(base + url) == before
            assert get_json(base + "/civcas/incidents.json?_size=1")["filtered_table_rows_count"] == count_before
    with serving(db, tmp_path) as (base, _pid):
        assert "(rev)" in get_json(base + url)[0]["title"]
