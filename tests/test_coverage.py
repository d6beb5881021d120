"""Coverage of the air war: enough real incidents on both sides, each with its key facts pinned.

`tests/pins/incidents.csv` and `tests/pins/admitted_series.csv` hold each incident's key facts (place, dates,
coordinates, belligerent and its assessment and conceded deaths, the lowest and highest current civilian death
claims) and the coalition's admitted-versus-reported series as curated. A later edit of raw/ that changes
one of them fails here until the pin is deliberately updated (`python tests/pins/update.py`, reviewed in the diff).
"""
from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from pins.facts import INCIDENT_FACTS_SQL, SERIES_SQL, rows_as_text

PINS = Path(__file__).parent / "pins"


def read_pin(name: str) -> list[dict[str, str]]:
    with open(PINS / name, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_enough_incidents_on_both_sides(db):
    by_side = dict(db.execute("""
        select b.top_id, count(*) from incidents i join actors b on b.actor_id = i.belligerent group by b.top_id"""))
    assert sum(by_side.values()) >= 40
    assert by_side.get("us-led-coalition", 0) >= 10, by_side
    assert by_side.get("russian-government", 0) >= 10, by_side
    # coalition members other than the US whose governments admitted strikes
    members = {r[0] for r in db.execute(
        "select belligerent from incidents where belligerent in ('netherlands-armed-forces', 'australian-defence-force', "
        "'uk-ministry-of-defence', 'canadian-armed-forces')")}
    assert len(members) >= 2, members


def test_the_map_shows_the_air_war(db):
    geolocated = db.execute("select count(*) from incidents where latitude is not null").fetchone()[0]
    total = db.execute("select count(*) from incidents").fetchone()[0]
    assert geolocated >= 40 and geolocated / total >= 0.8
    countries = {r[0] for r in db.execute("select distinct country from incidents where latitude is not null")}
    assert {"SY", "IQ"} <= countries


def test_every_incident_is_sourced_graded_and_summarised(db):
    for row in db.execute("select * from incidents"):
        assert row["grading"] != "not yet assessed" and row["grading_reason"], row["incident_id"]
        assert len(row["summary"]) > 80, row["incident_id"]
        assert row["claimants_count"] >= 1 and row["sources_count"] >= 1, row["incident_id"]
        # one claimant means provisional, whatever the grade
        assert row["provisional"] == (row["claimants_count"] < 2), row["incident_id"]
        if row["grading"] == "fair":
            assert row["claimants_count"] >= 2, row["incident_id"]
        if row["grading"] == "confirmed":
            assert row["belligerent_assessment"] in ("credible", "non-credible", "duplicate", "unknown")
            conceded = db.execute("""
                select count(*) from statements s join actors a on a.actor_id = s.speaker
                join actors b on b.actor_id = ? where s.incident_id = ? and a.top_id = b.top_id
                union all
                select count(*) from figures f join actors a on a.actor_id = f.claimant
                join actors b on b.actor_id = ? where f.incident_id = ? and a.top_id = b.top_id""",
                (row["belligerent"], row["incident_id"]) * 2).fetchall()
            assert sum(n for (n,) in conceded) > 0, f"{row['incident_id']}: confirmed, but nothing from the belligerent"


def test_every_figure_rests_on_a_read_source_with_a_quote(db):
    bad = db.execute("""
        select f.figure_id from figures f join sources s on s.source_id = f.source_id
        where trim(f.quote) = '' or s.publisher is null
           or (s.url is null and s.cited_in is null)""").fetchall()
    assert bad == []


def test_pinned_incident_facts(built_db):
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    actual = {r["incident_id"]: r for r in rows_as_text(conn, INCIDENT_FACTS_SQL)}
    pinned = {r["incident_id"]: r for r in read_pin("incidents.csv")}
    assert sorted(actual) == sorted(pinned), "incidents added or removed: update tests/pins deliberately"
    for incident_id, row in pinned.items():
        assert actual[incident_id] == row, incident_id


def test_pinned_admitted_series(built_db):
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    assert rows_as_text(conn, SERIES_SQL) == read_pin("admitted_series.csv")


def test_the_seed_contradiction_is_a_comparable_pair(ds_rows):
    rows = ds_rows("admitted_vs_reported", {"perpetrator": "us-led-coalition"})
    sohr = [r for r in rows if r["as_of"] == "2016-11-09" and r["claimant"].startswith("Syrian Observatory")]
    assert sohr and sohr[0]["value_min"] == 680 and sohr[0]["admitted_in_force"] == 119
    assert sohr[0]["areas"] and "understates" in sohr[0]["areas"]
    admitted = [r["value_min"] for r in rows if r["side"] == "admitted by the belligerent"]
    assert len(admitted) >= 20 and admitted == sorted(admitted), "a running total never goes down"


def test_series_never_pairs_unlike_kinds_or_smaller_areas(db, ds_rows):
    for perpetrator in ("us-led-coalition", "russian-armed-forces"):
        for row in ds_rows("admitted_vs_reported", {"perpetrator": perpetrator}):
            kind = db.execute("select aggregate_kind from figures where figure_id = ?", (row["figure_id"],)).fetchone()[0]
            assert kind == "running total"
            if row["admitted_area"]:
                assert row["area"] in row["admitted_area"]
                assert bool(row["areas"]) == (row["area"] != row["admitted_area"])


def test_disagreements_never_mix_batches_and_running_totals(db, ds_rows):
    for row in ds_rows("disagreements", {}):
        if row["incident_id"] is None:
            assert "(batch" in row["about"] or "(running total" in row["about"] or "(period count" in row["about"]


def test_belligerent_figures_are_told_apart_by_the_parent_chain(ds_rows):
    rows = {r["incident_id"]: r for r in ds_rows("belligerent_vs_monitors", {})}
    # The US government accused Russia over the aid convoy: its 20 is not Russia conceding 20.
    convoy = rows["sy-2016-09-19-urum-al-kubra"]
    assert convoy["conceded"] == 0 and "non-credible" in convoy["conceded_by"]
    jadida = rows["iq-2017-03-17-mosul-al-jadida"]
    assert jadida["conceded"] == 105 and jadida["gap"] > 0


def test_corrections_travel_with_what_they_correct(db, ds_rows):
    denial = db.execute("select corrected_by from statements where statement_id = 'seed-us-rejects-sohr'").fetchone()[0]
    assert denial and "us-rejection-unsupported" in denial
    listed = [r for r in ds_rows("belligerent_statements", {}) if r["quote"].startswith("The US rejects this figure")]
    assert listed and listed[0]["corrected_by"]
    batch = [r for r in ds_rows("headline_numbers", {}) if "(running total)" in r["headline"] and r["value_min"] == 64]
    assert batch and batch[0]["caveat"].startswith("corrected")


def test_early_tolls_do_not_set_the_derived_minimums(db):
    heisha = db.execute("select * from incidents where incident_id = 'sy-2016-11-08-al-heisha'").fetchone()
    assert (heisha["women_killed_min"], heisha["children_killed_min"]) == (9, 2)
    fadhiliya = db.execute("select * from incidents where incident_id = 'iq-2016-10-22-fadhiliya'").fetchone()
    assert fadhiliya["claimants_count"] == 2  # the family (its members are one claimant) and local officials
