"""Every fact of the seed article is in the data, attributed; corrections and discrepancies stay on record.

These tests pin the curated facts so that a later edit cannot silently lose them.
"""
from __future__ import annotations


import pytest

SEED = "wilkins-2016-11-11-us-led-strike-kills-20"
HEISHA = "sy-2016-11-08-al-heisha"
FADHILIYA = "iq-2016-10-22-fadhiliya"


def figure(db, **where):
    clauses = " AND ".join(f"{k} IS ?" for k in where)
    return db.execute(f"SELECT * FROM figures WHERE {clauses}", tuple(where.values())).fetchall()


def claim(db, source, incident, claimant, metric):
    rows = figure(db, source_id=source, incident_id=incident, claimant=claimant, metric=metric)
    assert len(rows) == 1, (source, incident, claimant, metric, len(rows))
    return rows[0]


# --- the seed article itself ---------------------------------------------------------------

def test_seed_article_is_identified(db):
    s = db.execute("SELECT * FROM sources WHERE source_id = ?", (SEED,)).fetchone()
    assert s["author"] == "Brett Wilkins"
    assert s["published"] == "2016-11-11"
    assert s["url"].startswith("https://brettwilkins.com/2016/11/11/")
    original = db.execute("SELECT * FROM sources WHERE publisher = 'Daily Kos'").fetchone()
    assert original["cited_in"] == SEED


@pytest.mark.parametrize("publisher", ["BBC News", "Deutsche Welle", "Syrian Observatory for Human Rights", "Daily Kos"])
def test_every_outlet_and_body_named_is_a_source(db, publisher):
    assert db.execute("SELECT count(*) FROM sources WHERE publisher = ?", (publisher,)).fetchone()[0] >= 1


@pytest.mark.parametrize("actor", ["sohr", "us-led-coalition", "john-dorrian", "un-special-envoy-syria", "body-count-authors",
                                   "russian-armed-forces", "sdf", "islamic-state", "saada-al-aboud"])
def test_every_claimant_and_speaker_named_is_an_actor(db, actor):
    assert db.execute("SELECT count(*) FROM actors WHERE actor_id = ?", (actor,)).fetchone()[0] == 1


@pytest.mark.parametrize("metric, value, claimant", [
    ("civilians_killed", 20, "sohr"), ("women_killed", 6, "sohr"), ("children_killed", 1, "sohr"), ("civilians_injured", 32, "sohr"),
])
def test_seed_heisha_figures(db, metric, value, claimant):
    f = claim(db, SEED, HEISHA, claimant, metric)
    assert (f["value_min"], f["value_max"], f["qualifier"]) == (value, value, "exact")
    assert str(value) in f["quote"] or {1: "a child", 6: "six women"}[value] in f["quote"]


def test_seed_heisha_place_and_context(db):
    place = db.execute("SELECT p.* FROM places p JOIN incidents i ON i.place_id = p.place_id WHERE i.incident_id = ?", (HEISHA,)).fetchone()
    assert place["name"] == "al-Heisha" and place["name_local"] == "الهيشة" and place["country"] == "SY"
    # 40 km north of Raqqa (35.95 N): about 0.36 degrees of latitude.
    assert place["latitude"] == pytest.approx(35.95 + 40 / 111.2, abs=0.01)
    assert place["geo_precision"] == 5 and place["geo_method"] == "distance and direction"
    kinds = {r["statement_id"]: r for r in db.execute("SELECT * FROM statements WHERE incident_id = ? AND source_id = ?", (HEISHA, SEED))}
    assert kinds["seed-dorrian-confirms-strikes"]["speaker"] == "john-dorrian"
    assert "conclusively determine responsibility" in kinds["seed-dorrian-responsibility"]["quote"]
    assert kinds["seed-aboud-fighters-among-us"]["statement_type"] == "witness account"
    assert "controlled by Islamic State" in kinds["seed-heisha-is-held"]["quote"]
    assert "Kurdish and Arab forces" in kinds["seed-heisha-is-held"]["quote"]


def test_seed_mosul_family_figures(db):
    killed = claim(db, SEED, FADHILIYA, "yousuf-family", "civilians_killed")
    children = claim(db, SEED, FADHILIYA, "yousuf-family", "children_killed")
    women = claim(db, SEED, FADHILIYA, "yousuf-family", "women_killed")
    assert (killed["value_min"], children["value_min"]) == (8, 3)
    assert (women["value_min"], women["value_max"], women["qualifier"]) == (1, None, "at least")
    assert "pregnant woman" in women["quote"]


@pytest.mark.parametrize("claimant, metric, lo, hi, qualifier, area", [
    ("sohr", "civilians_killed", 680, 680, "exact", "Syria"),
    ("sohr", "children_killed", 169, 169, "exact", "Syria"),
    ("us-central-command", "civilians_killed", 64, 64, "exact", "Syria and Iraq"),
    ("brett-wilkins", "civilians_killed", 2000, 2000, "about", "Syria"),
    ("un-special-envoy-syria", "deaths_total", 400000, None, "more than", "Syria"),
    ("body-count-authors", "deaths_total", 1300000, None, "more than", "Afghanistan, Iraq and Pakistan"),
])
def test_seed_aggregate_figures(db, claimant, metric, lo, hi, qualifier, area):
    f = claim(db, SEED, None, claimant, metric)
    assert (f["value_min"], f["value_max"], f["qualifier"], f["scope_area"]) == (lo, hi, qualifier, area)


def test_seed_unquantified_assertion(db):
    s = db.execute("SELECT * FROM statements WHERE statement_id = 'seed-us-half-century'").fetchone()
    assert s["statement_type"] == "assertion" and s["speaker"] == "brett-wilkins" and "half century" in s["quote"]


# --- corroboration ---------------------------------------------------------------------------

def test_heisha_dates_and_grading(db):
    i = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (HEISHA,)).fetchone()
    assert (i["date_start"], i["date_end"], i["date_precision"]) == ("2016-11-08", "2016-11-09", 2)
    assert i["grading"] == "contested" and "contested event" in i["grading_reason"]
    assert i["first_reported_by"] == "rbss"
    assert i["belligerent"] == "us-led-coalition" and i["belligerent_status"] == "known"


def test_heisha_every_toll_version_is_kept(db):
    tolls = {(r["claimant"], r["value_min"], r["value_max"]) for r in
             db.execute("SELECT * FROM figures WHERE incident_id = ? AND metric = 'civilians_killed'", (HEISHA,))}
    assert {("sohr", 16, 16), ("sohr", 20, 20), ("rbss", 23, 23), ("heisha-residents", 23, 23)} <= tolls
    first = figure(db, figure_id="afp-ar-heisha-sohr-first-toll")[0]
    assert first["superseded_by"] == "afp-heisha-sohr-killed"
    women = {r["value_min"] for r in db.execute(
        "SELECT value_min FROM figures WHERE incident_id = ? AND metric = 'women_killed'", (HEISHA,))}
    assert women == {6, 9}
    lcc = figure(db, figure_id="syriadirect-heisha-lcc")[0]
    assert lcc["claimant"] == "lcc" and "Syrian Democratic Forces shelled" in lcc["quote"]


def test_fadhiliya_is_pinned_down(db):
    i = db.execute("SELECT * FROM incidents WHERE incident_id = ?", (FADHILIYA,)).fetchone()
    assert (i["date_start"], i["date_end"], i["date_precision"]) == ("2016-10-22", "2016-10-22", 1)
    assert i["place"] == "Fadhiliya" and i["place_local"] == "الفاضلية" and i["country"] == "IQ"
    assert i["grading"] == "fair"
    # The family (its members are one claimant) and local officials; the seed article's author is not a claimant.
    assert i["claimants_count"] == 2
    assert (i["civilians_killed_min"], i["civilians_killed_max"]) == (8, 8)


def test_us_64_is_a_batch_and_the_running_total_is_recorded(db):
    batch = figure(db, figure_id="centcom-64-batch-killed")[0]
    assert (batch["period_start"], batch["period_end"], batch["as_of"]) == ("2015-11-20", "2016-09-10", "2016-11-09")
    total = figure(db, figure_id="centcom-119-cumulative")[0]
    assert total["value_min"] == 119 and total["claimant"] == "us-central-command"
    assert figure(db, figure_id="cjtf-188-cumulative")[0]["value_min"] == 188


def test_aggregate_claims_are_pinned_down(db):
    assert figure(db, figure_id="sohr-russia-2016-09-civilians")[0]["value_min"] == 3804
    envoy = figure(db, figure_id="demistura-400000")[0]
    assert (envoy["qualifier"], envoy["as_of"]) == ("about", "2016-04-22")
    study = db.execute("SELECT * FROM sources WHERE source_id = 'body-count-2015'").fetchone()
    assert study["source_type"] == "study" and "Body Count" in study["title"]
    per_country = {r["scope_area"]: r["value_min"] for r in db.execute(
        "SELECT scope_area, value_min FROM figures WHERE claimant = 'body-count-authors' AND source_id != ?", (SEED,))}
    assert per_country == {"Afghanistan, Iraq and Pakistan": 1300000, "Iraq": 1000000, "Afghanistan": 220000, "Pakistan": 80000}


@pytest.mark.parametrize("discrepancy, kind, figure_id", [
    ("dorrian-spelling", "misspelling", None),
    ("aboud-quote-afp-not-dw", "misattribution", None),
    ("bbc-women-breakdown", "outdated", "seed-heisha-women-killed"),
    ("wounded-32-from-afp", "imprecise", "seed-heisha-injured"),
    ("us-64-was-a-batch", "subset", "seed-us-civilians-syria-iraq"),
    ("russia-2000-stale", "outdated", "seed-russia-civilians-syria"),
    ("demistura-estimate-not-more-than", "imprecise", "seed-un-envoy-syria-deaths"),
    ("body-count-around-not-more-than", "imprecise", "seed-body-count-deaths"),
    ("bbc-dw-relied-on-afp", "wire copy", None),
    ("mosul-date-place", "imprecise", None),
])
def test_discrepancies_are_recorded_with_both_sources(db, discrepancy, kind, figure_id):
    d = db.execute("SELECT * FROM discrepancies WHERE discrepancy_id = ?", (discrepancy,)).fetchone()
    assert d is not None, discrepancy
    assert d["kind"] == kind and d["figure_id"] == figure_id
    assert d["source_id"] != d["better_source_id"]
    if figure_id:
        # The article's claim is kept as reported, unchanged.
        kept = figure(db, figure_id=figure_id)[0]
        assert kept["source_id"] == SEED


def test_every_read_source_has_an_address_and_every_figure_a_quote(db):
    unread = db.execute("SELECT count(*) FROM sources WHERE cited_in IS NULL AND url IS NULL").fetchone()[0]
    assert unread == 0
    assert db.execute("SELECT count(*) FROM figures WHERE trim(quote) = ''").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM sources").fetchone()[0] >= 30
