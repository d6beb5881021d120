"""Change history, tombstones, releases, and the formats other tools read: Atom (feedparser), GeoJSON (geojson)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from civcas.release import current_release
from conftest import ROOT, metadata_yml, run_build, sql_rows
from rawfiles import RawFile


def change(**kw) -> dict:
    return {"changed_on": "2026-12-02", "summary": "Test.", **kw}


def test_every_incident_says_when_it_was_published_and_last_changed(db):
    for row in db.execute("select incident_id, first_published, last_modified from incidents"):
        assert row["first_published"] and row["last_modified"], row["incident_id"]
        assert row["first_published"] <= row["last_modified"]
    heisha = db.execute("select * from incidents where incident_id = 'sy-2016-11-08-al-heisha'").fetchone()
    assert (heisha["first_published"], heisha["last_modified"]) == ("2026-11-25", "2026-12-01")


@pytest.mark.parametrize("row, line_part", [
    (change(change_id="t1", table_name="incidents", row_id="no-such-incident", action="changed"),
     "row_id: no incidents row has incident_id 'no-such-incident'"),
    (change(change_id="t2", table_name="incidents", row_id="sy-2016-11-08-al-heisha", action="removed"),
     "row_id: 'sy-2016-11-08-al-heisha' is removed: its id may not be used again in incidents"),
    (change(change_id="t3", table_name="incidents", row_id="old-incident", action="merged"),
     "replaced_by: required when action is 'merged'"),
    (change(change_id="t4", table_name="incidents", row_id="old-incident", action="merged", replaced_by="nowhere"),
     "replaced_by: no incidents row has incident_id 'nowhere' to replace it"),
    (change(change_id="t5", table_name="figures", row_id="x", action="added", replaced_by="y"),
     "replaced_by: must be empty unless action is 'merged'"),
])
def test_the_change_log_and_the_tables_must_agree(raw_copy, tmp_path, row, line_part):
    RawFile(raw_copy, "changes").append(row)
    result = run_build("--raw", str(raw_copy), "--db", str(tmp_path / "civcas.db"))
    assert result.returncode == 1
    assert any(line.startswith(f"{raw_copy}/changes.csv:") and line.endswith(line_part) or line_part in line
               for line in result.stderr.splitlines()), result.stderr


def test_a_tombstone_for_a_merged_incident_builds(raw_copy, tmp_path):
    RawFile(raw_copy, "changes").append(change(change_id="t6", table_name="incidents", row_id="sy-2016-11-09-duplicate",
                                               action="merged", replaced_by="sy-2016-11-08-al-heisha"))
    assert run_build("--raw", str(raw_copy), "--db", str(tmp_path / "civcas.db")).returncode == 0


def test_an_incident_without_an_added_row_is_refused(raw_copy, tmp_path):
    text = (raw_copy / "changes.csv").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("add-iq-2016-10-22-fadhiliya,")) + "\n"
    (raw_copy / "changes.csv").write_text(text, encoding="utf-8")
    result = run_build("--raw", str(raw_copy), "--db", str(tmp_path / "civcas.db"))
    assert result.returncode == 1
    assert "incident_id: no 'added' row in changes.csv says when 'iq-2016-10-22-fadhiliya' was published" in result.stderr


def test_the_release_is_the_changelogs_and_everywhere(db):
    release = current_release()
    assert release and (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").count(f"## {release}") == 1
    info = db.execute("select release, data_version, data_sha256 from build_info").fetchone()
    assert info["release"] == release and info["data_sha256"].startswith(info["data_version"])
    assert json.loads((ROOT / "datapackage.json").read_text(encoding="utf-8"))["version"] == release


def test_atom_feed_is_valid_and_lists_changes(ds_rows, built_db):
    import asyncio

    import feedparser

    from conftest import make_datasette

    datasette = make_datasette(built_db)

    async def fetch():
        await datasette.invoke_startup()
        return await datasette.client.get("/civcas/feed.atom")
    response = asyncio.run(fetch())
    assert response.status_code == 200 and "xml" in response.headers["content-type"]
    feed = feedparser.parse(response.text)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    # The newest 100 changes, newest first, each titled by what it changed: an incident by its title, a
    # discrepancy as a correction, any other row by its table and id.
    newest = conn.execute(
        "select c.change_id, c.action, c.table_name, c.row_id, i.title, d.subject from changes c "
        "left join incidents i on c.table_name = 'incidents' and i.incident_id = c.row_id "
        "left join discrepancies d on c.table_name = 'discrepancies' and d.discrepancy_id = c.row_id "
        "order by c.changed_on desc, c.change_id limit 100").fetchall()
    assert [e.id for e in feed.entries] == [f"tag:civcas,2026:change/{row[0]}" for row in newest]
    for entry, (_, action, table, row_id, title, subject) in zip(feed.entries, newest):
        named = {"incidents": title or row_id, "discrepancies": f"Correction: {subject or row_id}"}
        assert entry.title == f"{named.get(table, f'{table} {row_id}')} ({action})"
        assert entry.updated and entry.link
    assert any(table == "incidents" and title for _, _, table, _, title, _ in newest)
    # Every change, past the feed's 100, through the feed's own SQL: corrections are titled as such.
    sql = metadata_yml()["databases"]["civcas"]["queries"]["feed"]["sql"]
    assert sql.rstrip().endswith("limit 100")
    every = sql_rows(built_db, sql.rstrip()[:-len("limit 100")])
    corrections = [r["atom_title"] for r in every if r["table_name"] == "discrepancies"]
    assert corrections and all(t.startswith("Correction: ") for t in corrections)
    release = conn.execute("select release, data_version from build_info").fetchone()
    assert all(f"civcas release {release[0]}, data version {release[1]}" in e.summary for e in feed.entries)


def test_geojson_is_valid_points_with_attributes(built_db):
    import asyncio

    import geojson

    from conftest import make_datasette

    datasette = make_datasette(built_db)

    async def fetch(path):
        await datasette.invoke_startup()
        return await datasette.client.get(path)
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    geolocated = [r[0] for r in conn.execute(
        "select incident_id from incidents where latitude is not null order by date_start desc, incident_id")]
    # The canned query lists the 100 newest (its description says so); the table, every one (2,000 a page).
    for path, expected in (("/civcas/incidents_geojson.geojson", geolocated[:100]),
                           ("/civcas/incidents.geojson?_size=max&latitude__notblank=1", geolocated)):
        response = asyncio.run(fetch(path))
        assert response.status_code == 200, response.text[:300]
        collection = geojson.loads(response.text)
        assert isinstance(collection, geojson.FeatureCollection) and collection.is_valid, collection.errors()
        assert sorted(f.properties["incident_id"] for f in collection.features) == sorted(expected), path
        for feature in collection.features:
            assert feature.geometry.type == "Point"
            lon, lat = feature.geometry.coordinates
            row = conn.execute("select latitude, longitude from incidents where incident_id = ?",
                               (feature.properties["incident_id"],)).fetchone()
            assert abs(lat - row[0]) < 1e-6 and abs(lon - row[1]) < 1e-6  # geojson writes 6 decimals
        if "url" in collection.features[0].properties:
            assert collection.features[0].properties["url"].startswith("/civcas/incidents/")
