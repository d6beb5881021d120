"""The build contract on invalid input: `python build.py [--raw DIR] [--db PATH] [--check]`.

Every test starts from a good database (built once per session by build.py from
a cut of raw/: its first incidents and every row they reach, see cut_of_raw;
then copied into the test's folder), breaks one thing in a copy of that cut,
rebuilds over that database and asserts that the build

* exits non-zero, without a Python traceback;
* prints the exact problem line `DIR/FILE.csv:LINE: column: what is wrong (value)`,
  where DIR is the --raw argument as given and LINE is the line the record
  starts on (computed from the edited file, never hard-coded);
* ends with the count line `N problems found; DB left unchanged`;
* leaves the existing database byte-for-byte unchanged and no temporary
  `.civcas-*.building` file behind.

Target rows are picked from the data by what they are (the first geolocated
place, the first incident figure...), so curators can keep editing raw/.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from civcas import schema
from conftest import RAW, ROOT, build_in_process, run_build
from rawfiles import BOM, CUT_INCIDENTS, RawFile

# --- Running the build ------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stray_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".building") or p.name.startswith(".civcas-"))


def count_line(n: int, kept: str) -> str:
    return f"{n} problem{'s' * (n != 1)} found; {kept}"


class Case:
    """A good database, a writable copy of raw/ and the means to break the copy."""

    def __init__(self, raw: Path, db: Path, good: bytes):
        self.raw, self.db = raw, db
        db.write_bytes(good)
        self.sha = sha256(db)

    def file(self, table: str) -> RawFile:
        return RawFile(self.raw, table)

    def msg(self, table: str, line: int, column: str, message: str, shown: str | None = None) -> str:
        return f"{shown or self.raw}/{table}.csv:{line}: {column}: {message}"

    def rejects(self, *expected: str, raw_arg: str | None = None, prefixes: tuple[str, ...] = (),
                absent: tuple[str, ...] = ()) -> list[str]:
        """Rebuild over the good database; assert it fails as the contract says. Returns the problem lines."""
        raw_arg = raw_arg or str(self.raw)
        shown = raw_arg.rstrip("/")
        result = build_in_process("--raw", raw_arg, "--db", str(self.db))
        err = result.stderr
        assert result.returncode != 0, f"build accepted broken data:\n{err}"
        assert "Traceback" not in err, err
        lines = err.splitlines()
        for line in expected:
            assert line in lines, f"expected problem line\n  {line}\nnot in stderr:\n{err}"
        for prefix in prefixes:
            assert any(line.startswith(prefix) for line in lines), f"no line starts with\n  {prefix}\nin:\n{err}"
        for text in absent:
            assert text not in err, f"unexpected {text!r} in:\n{err}"
        *problems, last = lines
        assert last == count_line(len(problems), f"{self.db} left unchanged"), err
        pattern = re.compile(rf"{re.escape(shown)}/[a-z_]+\.csv:\d+: [^:]+: .+")
        for line in problems:
            assert pattern.fullmatch(line), f"not a problem line: {line!r}"
        assert problems == sorted(problems, key=problem_order), f"problems not sorted:\n{err}"
        assert sha256(self.db) == self.sha, "the existing database was changed by a failed build"
        assert stray_files(self.db.parent) == [], "a temporary file was left behind"
        return problems

    def accepts(self) -> subprocess.CompletedProcess:
        result = build_in_process("--raw", str(self.raw), "--db", str(self.db))
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result


def problem_order(line: str) -> tuple:
    """Sort key of the contract: file in load order, then line, then column."""
    path, number, column, _ = re.match(r"(.*?):(\d+): ([^:]+): (.*)", line).groups()
    table = Path(path).stem
    order = [t.name for t in schema.TABLES]
    return (order.index(table) if table in order else 99, int(number), column)


@pytest.fixture(scope="session")
def good_db(cut_db) -> bytes:
    """The bytes of a good database built by build.py from the cut of raw/ (conftest.cut_db)."""
    return cut_db.read_bytes()


@pytest.fixture
def case(cut_raw, tmp_path, good_db) -> Case:
    raw = tmp_path / "raw"
    shutil.copytree(cut_raw, raw)
    return Case(raw, tmp_path / "civcas.db", good_db)


def allowed(table: str, column: str, text: str) -> str:
    values = schema.BY_NAME[table].column(column).values
    return "not an allowed value; use one of " + ", ".join(map(str, values)) + f" ({text!r})"


# Row pickers.
def GEO(row):  # a geolocated place
    return row["latitude"] != ""


def INC(row):  # an incident figure
    return row["incident_id"] != ""


def ANY(row):
    return True


# --- One cell or one row wrong -------------------------------------------------------------

SLUG_MSG = "not a slug: use lower-case letters, digits and single hyphens"

CELL_CASES = [
    # id, table, row picker, changes, [(column, message)]
    # types
    ("integer-word", "figures", ANY, {"value_min": "twenty"}, [("value_min", "not a whole number ('twenty')")]),
    ("integer-decimal", "figures", ANY, {"value_max": "2.5"}, [("value_max", "not a whole number ('2.5')")]),
    ("real", "places", GEO, {"latitude": "abc"}, [("latitude", "not a number ('abc')")]),
    ("real-nan", "places", GEO, {"longitude": "nan"}, [("longitude", "not a finite number ('nan')")]),
    ("date-us-format", "incidents", ANY, {"date_start": "9/11/2016"},
     [("date_start", "not an ISO date YYYY-MM-DD ('9/11/2016')")]),
    ("date-no-such-day", "incidents", ANY, {"date_end": "2016-02-30"}, [("date_end", "no such date ('2016-02-30')")]),
    ("date-timestamp", "figures", ANY, {"as_of": "2016-11-11T00:00:00Z"},
     [("as_of", "not an ISO date YYYY-MM-DD ('2016-11-11T00:00:00Z')")]),
    ("slug-space", "incidents", ANY, {"place_id": "Bad ID"}, [("place_id", f"{SLUG_MSG} ('Bad ID')")]),
    ("slug-pk", "figures", ANY, {"figure_id": "Bad ID"}, [("figure_id", f"{SLUG_MSG} ('Bad ID')")]),
    ("slug-double-hyphen", "statements", ANY, {"speaker": "us--coalition"},
     [("speaker", f"{SLUG_MSG} ('us--coalition')")]),
    ("url-words", "actors", ANY, {"url": "not a url"}, [("url", "not an absolute http(s) URL ('not a url')")]),
    ("url-ftp", "sources", ANY, {"url": "ftp://x"}, [("url", "not an absolute http(s) URL ('ftp://x')")]),
    ("url-no-host", "sources", ANY, {"archive_url": "https://"},
     [("archive_url", "not an absolute http(s) URL ('https://')")]),
    ("url-space", "sources", ANY, {"url": "https://example.org/a b"},
     [("url", "not an absolute http(s) URL ('https://example.org/a b')")]),
    ("language", "sources", ANY, {"language": "english"},
     [("language", "not an ISO 639-1 two-letter language code ('english')")]),
    ("country-name", "places", ANY, {"country": "Syria"},
     [("country", "not an ISO 3166-1 alpha-2 country code ('Syria')")]),
    ("country-lower", "actors", ANY, {"country": "sy"}, [("country", "not an ISO 3166-1 alpha-2 country code ('sy')")]),
    ("leading-space", "incidents", ANY, {"title": " Air strike"},
     [("title", "has leading or trailing spaces (' Air strike')")]),
    ("trailing-space", "figures", ANY, {"metric": "civilians_killed "},
     [("metric", "has leading or trailing spaces ('civilians_killed ')")]),
    ("trailing-newline", "actors", ANY, {"description": "Someone.\n"},
     [("description", "has leading or trailing spaces ('Someone.\\n')")]),
    # required
    ("required-title", "incidents", ANY, {"title": ""}, [("title", "required, but empty ('')")]),
    ("required-quote", "figures", ANY, {"quote": ""}, [("quote", "required, but empty ('')")]),
    ("required-language", "sources", ANY, {"language": ""}, [("language", "required, but empty ('')")]),
    ("required-pk", "actors", ANY, {"actor_id": ""}, [("actor_id", "required, but empty ('')")]),
    # controlled vocabularies
    ("vocab-metric", "figures", ANY, {"metric": "deaths"}, [("metric", allowed("figures", "metric", "deaths"))]),
    ("vocab-grading", "incidents", ANY, {"grading": "maybe"}, [("grading", allowed("incidents", "grading", "maybe"))]),
    ("vocab-geo-precision", "places", GEO, {"geo_precision": "9"},
     [("geo_precision", allowed("places", "geo_precision", "9"))]),
    ("vocab-date-precision", "incidents", ANY, {"date_precision": "0"},
     [("date_precision", allowed("incidents", "date_precision", "0"))]),
    ("vocab-case-matters", "figures", ANY, {"qualifier": "Exact"}, [("qualifier", allowed("figures", "qualifier", "Exact"))]),
    ("vocab-source-type", "sources", ANY, {"source_type": "blog"},
     [("source_type", allowed("sources", "source_type", "blog"))]),
    # ranges
    ("latitude-91", "places", GEO, {"latitude": "91"}, [("latitude", "must be at most 90 ('91')")]),
    ("latitude-minus-91", "places", GEO, {"latitude": "-91"}, [("latitude", "must be at least -90 ('-91')")]),
    ("longitude-181", "places", GEO, {"longitude": "181"}, [("longitude", "must be at most 180 ('181')")]),
    ("negative-value-min", "figures", ANY, {"value_min": "-5"}, [("value_min", "must be at least 0 ('-5')")]),
    ("negative-value-max", "figures", ANY, {"qualifier": "up to", "value_min": "", "value_max": "-1"},
     [("value_max", "must be at least 0 ('-1')")]),
    # dates of incidents
    ("date-start-after-end", "incidents", ANY, {"date_start": "2016-11-20", "date_end": "2016-11-10", "date_precision": "2"},
     [("date_end", "is before date_start 2016-11-20 ('2016-11-10')")]),
    ("precision-1-three-days", "incidents", ANY, {"date_start": "2016-11-06", "date_end": "2016-11-09", "date_precision": "1"},
     [("date_precision", "code 1 allows at most 0 days between date_start and date_end, not 3 (1)")]),
    ("precision-2-a-week", "incidents", ANY, {"date_start": "2016-11-01", "date_end": "2016-11-07", "date_precision": "2"},
     [("date_precision", "code 2 allows at most 5 days between date_start and date_end, not 6 (2)")]),
    ("precision-4-45-days", "incidents", ANY, {"date_start": "2016-10-01", "date_end": "2016-11-15", "date_precision": "4"},
     [("date_precision", "code 4 allows at most 31 days between date_start and date_end, not 45 (4)")]),
    # other ordered pairs
    ("period-end-before-start", "figures", ANY,
     {"incident_id": "", "scope_area": "Testland", "aggregate_kind": "batch", "scope_perpetrator": "", "period_start": "2016-05-01", "period_end": "2016-04-01"},
     [("period_end", "is before period_start 2016-05-01 ('2016-04-01')")]),
    ("accessed-before-published", "sources", ANY, {"published": "2016-11-11", "accessed": "2016-01-01"},
     [("accessed", "is before published 2016-11-11 ('2016-01-01')")]),
    ("bbox-lat-min-above-max", "countries", ANY, {"lat_min": "40", "lat_max": "30"},
     [("lat_max", "is before lat_min 40.0 (30.0)")]),
    # places: geolocated all the way or not at all
    ("latitude-without-longitude", "places", GEO, {"longitude": ""},
     [("longitude", "required when the place is geolocated (latitude, geo_precision, geo_method given) (None)")]),
    ("latitude-only", "places", GEO, {"longitude": "", "geo_precision": "", "geo_method": ""},
     [(c, "required when the place is geolocated (latitude given) (None)") for c in ("longitude", "geo_precision", "geo_method")]),
    ("method-only", "places", GEO, {"latitude": "", "longitude": "", "geo_precision": ""},
     [(c, "required when the place is geolocated (geo_method given) (None)") for c in ("latitude", "longitude", "geo_precision")]),
    # figures: bounds and qualifiers
    ("exact-min-not-max", "figures", INC, {"qualifier": "exact", "value_min": "5", "value_max": "7"},
     [("value_max", "must equal value_min for qualifier 'exact' (7)")]),
    ("about-without-min", "figures", INC, {"qualifier": "about", "value_min": "", "value_max": "7"},
     [("value_max", "must equal value_min for qualifier 'about' (7)")]),
    ("more-than-with-max", "figures", INC, {"qualifier": "more than", "value_min": "10", "value_max": "20"},
     [("value_max", "must be empty and value_min given for open-ended qualifier 'more than' (20)")]),
    ("at-least-without-min", "figures", INC, {"qualifier": "at least", "value_min": "", "value_max": ""},
     [("value_max", "must be empty and value_min given for open-ended qualifier 'at least' (None)")]),
    ("up-to-with-min", "figures", INC, {"qualifier": "up to", "value_min": "5", "value_max": "10"},
     [("value_min", "must be empty and value_max given for qualifier 'up to' (5)")]),
    ("range-min-equals-max", "figures", INC, {"qualifier": "range", "value_min": "10", "value_max": "10"},
     [("value_max", "must be greater than value_min for qualifier 'range' (10)")]),
    ("range-min-above-max", "figures", INC, {"qualifier": "range", "value_min": "30", "value_max": "20"},
     [("value_min", "is greater than value_max 20 (30)"), ("value_max", "must be greater than value_min for qualifier 'range' (20)")]),
    ("range-open", "figures", INC, {"qualifier": "range", "value_min": "10", "value_max": ""},
     [("value_max", "must be greater than value_min for qualifier 'range' (None)")]),
    # figures: incident or aggregate
    ("aggregate-without-scope", "figures", ANY,
     {"incident_id": "", "scope_area": "", "aggregate_kind": "running total", "scope_perpetrator": "", "period_start": "", "period_end": ""},
     [("scope_area", "required for an aggregate figure (one with no incident_id) (None)")]),
    ("aggregate-without-kind", "figures", ANY,
     {"incident_id": "", "scope_area": "Testland", "aggregate_kind": "", "scope_perpetrator": "", "period_start": "", "period_end": ""},
     [("aggregate_kind", "required for an aggregate figure (one with no incident_id) (None)")]),
    ("incident-figure-aggregate-kind", "figures", INC, {"aggregate_kind": "batch"},
     [("aggregate_kind", "must be empty for an incident figure (scope belongs to aggregates) ('batch')")]),
    ("incident-figure-scope-area", "figures", INC, {"scope_area": "Syria"},
     [("scope_area", "must be empty for an incident figure (scope belongs to aggregates) ('Syria')")]),
    ("incident-figure-scope-perpetrator", "figures", INC, {"scope_perpetrator": "some-actor"},
     [("scope_perpetrator", "must be empty for an incident figure (scope belongs to aggregates) ('some-actor')")]),
    ("incident-figure-period", "figures", INC, {"period_start": "2016-01-01", "period_end": "2016-12-31"},
     [("period_start", "must be empty for an incident figure (scope belongs to aggregates) ('2016-01-01')"),
      ("period_end", "must be empty for an incident figure (scope belongs to aggregates) ('2016-12-31')")]),
]


@pytest.mark.parametrize("table, where, changes, problems", [c[1:] for c in CELL_CASES], ids=[c[0] for c in CELL_CASES])
def test_bad_row_is_reported(case, table, where, changes, problems):
    f = case.file(table)
    line = f.set(f.first(where)[f.pk], **changes)
    case.rejects(*(case.msg(table, line, column, message) for column, message in problems))


@pytest.mark.parametrize("table, where, changes, problem", [
    ("places", GEO, {"latitude": "91"}, ("latitude", "must be at most 90 ('91')")),
    ("figures", lambda r: r["qualifier"] == "exact", {"value_min": "twenty"}, ("value_min", "not a whole number ('twenty')")),
], ids=["latitude-91", "value-min-word"])
def test_one_bad_cell_is_one_problem(case, table, where, changes, problem):
    f = case.file(table)
    line = f.set(f.first(where)[f.pk], **changes)
    expected = case.msg(table, line, *problem)
    assert case.rejects(expected) == [expected]


@pytest.mark.parametrize("table, where, changes, problem", [
    ("figures", lambda r: r["qualifier"] == "exact", {"value_min": "\u0663", "value_max": "\u0663"},
     ("value_min", "not a whole number ('\u0663')")),
    ("incidents", ANY, {"date_start": "\u0662\u0660\u0661\u0666-\u0661\u0661-\u0660\u0666"},
     ("date_start", "not an ISO date YYYY-MM-DD ('\u0662\u0660\u0661\u0666-\u0661\u0661-\u0660\u0666')")),
], ids=["integer", "date"])
def test_only_ascii_digits_are_digits(case, table, where, changes, problem):
    f = case.file(table)
    line = f.set(f.first(where)[f.pk], **changes)
    case.rejects(case.msg(table, line, *problem))


def test_one_problem_per_bad_cell_on_the_right_lines(case):
    """Two bad rows in one file: each is reported on its own line, in line order."""
    f = case.file("actors")
    rows = f.rows()
    first, last = rows[0]["actor_id"], rows[-1]["actor_id"]
    last_line = f.set(last, url="not a url")
    first_line = f.set(first, actor_type="army")
    assert first_line < last_line
    problems = case.rejects(case.msg("actors", first_line, "actor_type", allowed("actors", "actor_type", "army")),
                            case.msg("actors", last_line, "url", "not an absolute http(s) URL ('not a url')"))
    assert len(problems) == 2, problems


# --- Rules across rows and tables ------------------------------------------------------------

def _bbox(case: Case, code: str) -> dict[str, str]:
    return case.file("countries").first(lambda r: r["country_code"] == code)


def test_point_outside_country_bounding_box(case):
    sy = _bbox(case, "SY")
    lat = "30.0"
    assert float(lat) < float(sy["lat_min"])
    lon = f"{(float(sy['lon_min']) + float(sy['lon_max'])) / 2:.2f}"
    places = case.file("places")
    line = places.set(places.first(GEO)["place_id"], country="SY", latitude=lat, longitude=lon)
    case.rejects(case.msg("places", line, "latitude", f"point lies outside {sy['name']}'s bounding box ({float(lat)}, {float(lon)})"))


def test_longitude_outside_country_bounding_box(case):
    sy = _bbox(case, "SY")
    lat = f"{(float(sy['lat_min']) + float(sy['lat_max'])) / 2:.2f}"
    lon = f"{float(sy['lon_max']) + 1:.2f}"
    places = case.file("places")
    line = places.set(places.first(GEO)["place_id"], country="SY", latitude=lat, longitude=lon)
    problems = case.rejects(prefixes=(f"{case.raw}/places.csv:{line}: ",))
    assert any(f"point lies outside {sy['name']}'s bounding box ({float(lat)}, {float(lon)})" in p for p in problems), problems


def _figure_template(case: Case, where=INC) -> dict[str, str]:
    """A valid figure row to copy: scope columns cleared for an incident figure."""
    row = dict(case.file("figures").first(where))
    row.update(scope_area="", aggregate_kind="", scope_perpetrator="", period_start="", period_end="", as_of="", notes="")
    return row


def _breakdown_pairs():
    return [(part, total) for part, totals in schema.BREAKDOWNS.items() for total in totals]


@pytest.mark.parametrize("kind", ["incident", "aggregate"])
def test_breakdown_exceeding_its_total(case, kind):
    """children_killed above civilians_killed (and every other breakdown above its total) from the
    same claimant and source, for the same incident, or the same scope and period."""
    template = _figure_template(case)
    if kind == "aggregate":
        template.update(incident_id="", scope_area="Testland", aggregate_kind="period count",
                        period_start="2001-01-01", period_end="2001-12-31")
    figures = case.file("figures")
    expected = []
    for i, (part, total) in enumerate(_breakdown_pairs()):
        # a date of its own keeps each pair apart from every other row (as_of is part of the claim)
        as_of = (dt.date(2002, 1, 1) + dt.timedelta(days=i)).isoformat()
        common = dict(template, as_of=as_of, qualifier="exact", quote="Test.")
        figures.append(dict(common, figure_id=f"test-total-{i}", metric=total, value_min="5", value_max="5"))
        line = figures.append(dict(common, figure_id=f"test-part-{i}", metric=part, value_min="7", value_max="7"))
        expected.append(case.msg("figures", line, "value_min",
                                 f"{part} exceeds {total} 5 (figure 'test-total-{i}') from the same claimant "
                                 f"and source for the same incident or scope (7)"))
    problems = case.rejects(*expected)
    assert len(problems) == len(expected), problems


def test_breakdowns_that_do_not_conflict_are_accepted(case):
    """No false alarms: other claimant, other scope, open-ended total, part equal to total."""
    template = _figure_template(case)
    other_claimant = case.file("actors").first(lambda r: r["actor_id"] != template["claimant"])["actor_id"]
    figures = case.file("figures")
    pairs = [
        # (total changes, part changes)
        ({}, {"claimant": other_claimant}),
        ({"incident_id": "", "scope_area": "Testland", "aggregate_kind": "batch"},
         {"incident_id": "", "scope_area": "Otherland", "aggregate_kind": "batch"}),
        ({"incident_id": "", "scope_area": "Testland", "aggregate_kind": "batch", "period_start": "2001-01-01"},
         {"incident_id": "", "scope_area": "Testland", "aggregate_kind": "batch", "period_start": "2001-02-01"}),
        ({"qualifier": "at least", "value_max": ""}, {}),
        ({"value_min": "7", "value_max": "7"}, {}),
    ]
    for i, (total, part) in enumerate(pairs):
        common = dict(template, as_of=(dt.date(2003, 1, 1) + dt.timedelta(days=i)).isoformat(),
                      qualifier="exact", value_min="5", value_max="5", quote="Test.")
        figures.append({**common, "figure_id": f"test-total-{i}", "metric": "civilians_killed", **total})
        figures.append({**common, "figure_id": f"test-part-{i}", "metric": "children_killed",
                        "value_min": "7", "value_max": "7", **part})
    case.accepts()


REFERENCES = [
    # id, table, row picker, column, changes beyond the bad value, referenced table.column
    ("figures.incident_id", "figures", INC, "incident_id", {}, "incidents.incident_id"),
    ("figures.source_id", "figures", ANY, "source_id", {}, "sources.source_id"),
    ("figures.claimant", "figures", ANY, "claimant", {}, "actors.actor_id"),
    ("figures.scope_perpetrator", "figures", ANY, "scope_perpetrator",
     {"incident_id": "", "scope_area": "Testland", "aggregate_kind": "running total", "period_start": "", "period_end": ""},
     "actors.actor_id"),
    ("incidents.place_id", "incidents", ANY, "place_id", {}, "places.place_id"),
    ("incidents.belligerent", "incidents", ANY, "belligerent", {}, "actors.actor_id"),
    ("places.country", "places", ANY, "country", {}, "countries.country_code"),
    ("places.geo_source_id", "places", GEO, "geo_source_id", {}, "sources.source_id"),
    ("sources.cited_in (self)", "sources", ANY, "cited_in", {}, "sources.source_id"),
    ("actors.parent_id (self)", "actors", ANY, "parent_id", {}, "actors.actor_id"),
    ("actors.country", "actors", ANY, "country", {}, "countries.country_code"),
    ("statements.speaker", "statements", ANY, "speaker", {}, "actors.actor_id"),
    ("statements.incident_id", "statements", ANY, "incident_id", {}, "incidents.incident_id"),
    ("statements.source_id", "statements", ANY, "source_id", {}, "sources.source_id"),
]


@pytest.mark.parametrize("table, where, column, changes, target", [r[1:] for r in REFERENCES], ids=[r[0] for r in REFERENCES])
def test_unresolved_reference(case, table, where, column, changes, target):
    ref_table, ref_column = target.split(".")
    bad = "ZZ" if schema.BY_NAME[table].column(column).kind == "country" else "no-such-thing"
    f = case.file(table)
    line = f.set(f.first(where)[f.pk], **changes, **{column: bad})
    problems = case.rejects(case.msg(table, line, column, f"no {ref_table} row has {ref_column} {bad!r}"))
    assert len(problems) == 1, problems


def _discrepancy(case: Case, **changes) -> dict[str, str]:
    source = case.file("sources").first()["source_id"]
    row = {"discrepancy_id": "test-discrepancy", "kind": "misspelling", "subject": "A test.",
           "incident_id": case.file("incidents").first()["incident_id"],
           "figure_id": case.file("figures").first()["figure_id"],
           "source_id": source, "reported": "Heesha", "better_source_id": source, "better": "Heisha"}
    row.update(changes)
    return row


@pytest.mark.parametrize("column, target", [("figure_id", "figures.figure_id"), ("incident_id", "incidents.incident_id"),
                                            ("source_id", "sources.source_id"), ("better_source_id", "sources.source_id")])
def test_unresolved_reference_in_discrepancies(case, column, target):
    ref_table, ref_column = target.split(".")
    line = case.file("discrepancies").append(_discrepancy(case, **{column: "no-such-thing"}))
    problems = case.rejects(case.msg("discrepancies", line, column, f"no {ref_table} row has {ref_column} 'no-such-thing'"))
    assert len(problems) == 1, problems


def test_valid_discrepancy_and_forward_self_references_are_accepted(case):
    """A self reference may point to a row further down the file."""
    case.file("discrepancies").append(_discrepancy(case))
    actors = case.file("actors")
    rows = actors.rows()
    actors.set(rows[0]["actor_id"], parent_id=rows[-1]["actor_id"])
    sources = case.file("sources")
    rows = sources.rows()
    sources.set(rows[0]["source_id"], cited_in=rows[-1]["source_id"])
    case.accepts()
    with sqlite3.connect(case.db) as conn:
        assert conn.execute("SELECT count(*) FROM discrepancies WHERE discrepancy_id = 'test-discrepancy'").fetchone() == (1,)


def test_reference_to_a_rejected_row_is_not_reported_twice(case):
    """A row that failed validation is reported once, not again by every row that names it."""
    incidents = case.file("incidents")
    incident = incidents.first(lambda r: any(f["incident_id"] == r["incident_id"] for f in case.file("figures").rows()))
    line = incidents.set(incident["incident_id"], grading="maybe")
    problems = case.rejects(case.msg("incidents", line, "grading", allowed("incidents", "grading", "maybe")),
                            absent=("no incidents row",))
    assert len(problems) == 1, problems


@pytest.mark.parametrize("table", [t.name for t in schema.TABLES if t.name != "discrepancies"])
def test_duplicate_id_names_the_first_use(case, table):
    f = case.file(table)
    row = f.first()
    first = f.line_of(row[f.pk])
    line = f.append(row)
    problems = case.rejects(case.msg(table, line, f.pk, f"duplicate id, first used on line {first} ({row[f.pk]!r})"))
    assert len(problems) == 1, problems


def test_duplicate_ids_and_line_numbers_across_insert_batches(case):
    """More rows than one insert batch (5000): line numbers stay right on both sides of the boundary."""
    f = case.file("statements")
    row = f.first()
    first_line = f.line_of(row[f.pk])
    n = 6000
    start = f.append_many([dict(row, statement_id=f"test-statement-{i}") for i in range(n)])
    late_dup = f.append(dict(row, notes="Same id as the first statement."))  # in the second batch
    early_dup = f.line_of("test-statement-10")
    bad = f.set("test-statement-5500", statement_type="claim")
    f.append(dict(row, statement_id="test-statement-10"))
    assert bad == start + 5500 and early_dup == start + 10
    case.rejects(
        case.msg("statements", bad, "statement_type", allowed("statements", "statement_type", "claim")),
        case.msg("statements", late_dup, "statement_id", f"duplicate id, first used on line {first_line} ({row[f.pk]!r})"),
        case.msg("statements", start + n + 1, "statement_id", f"duplicate id, first used on line {early_dup} ('test-statement-10')"),
    )


# --- Header and file problems ------------------------------------------------------------------

def _columns(case: Case, table: str, edit: Callable[[list[str], list[list[str]]], tuple[list[str], list[list[str]]]]) -> None:
    f = case.file(table)
    header, _, records = f.records()
    rows = [[row[h] for h in header] for _, _, row in records]
    f.rewrite(*edit(header, rows))


def test_missing_column(case):
    def drop(header, rows):
        i = header.index("summary")
        return header[:i] + header[i + 1:], [r[:i] + r[i + 1:] for r in rows]
    _columns(case, "incidents", drop)
    case.rejects(case.msg("incidents", 1, "summary", "missing column"), absent=("no incidents row",))


def test_unknown_column(case):
    _columns(case, "figures", lambda h, rows: (h + ["extra"], [r + [""] for r in rows]))
    case.rejects(case.msg("figures", 1, "extra", "unknown column"))


def test_misspelt_column_is_missing_and_unknown(case):
    _columns(case, "incidents", lambda h, rows: ([{"date_start": "start_date"}.get(c, c) for c in h], rows))
    case.rejects(case.msg("incidents", 1, "date_start", "missing column"),
                 case.msg("incidents", 1, "start_date", "unknown column"))


def test_derived_column_in_raw_file(case):
    _columns(case, "incidents", lambda h, rows: (h + ["civilians_killed_min"], [r + [""] for r in rows]))
    case.rejects(case.msg("incidents", 1, "civilians_killed_min",
                          "is derived by the build from other tables; remove it from the raw file"))


def test_column_named_twice(case):
    _columns(case, "statements", lambda h, rows: (h + ["notes"], [r + [""] for r in rows]))
    case.rejects(case.msg("statements", 1, "(header)", "a column name appears twice"))


def test_blank_column_name(case):
    _columns(case, "sources", lambda h, rows: (h + [""], [r + [""] for r in rows]))
    case.rejects(case.msg("sources", 1, "(blank)", "unknown column"))


def test_missing_file(case):
    (case.raw / "incidents.csv").unlink()
    problems = case.rejects(case.msg("incidents", 1, "(file)", "file is missing"))
    assert problems == [case.msg("incidents", 1, "(file)", "file is missing")], "references to an unreadable file cascade"


def test_empty_file(case):
    (case.raw / "discrepancies.csv").write_bytes(b"")
    case.rejects(prefixes=(f"{case.raw}/discrepancies.csv:1: ",))


# --- CSV syntax ----------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [1, -1], ids=["too-many", "too-few"])
def test_row_with_wrong_number_of_cells(case, extra):
    f = case.file("statements")
    header, lines, records = f.records()
    start, end, row = next(r for r in records if r[0] == r[1])  # a one-line record
    cells = [row[h] for h in header]
    cells = cells + ["surplus"] if extra > 0 else cells[:-1]
    lines[start - 1] = f.serialize(cells)
    f.write("".join(lines))
    case.rejects(case.msg("statements", start, "(row)",
                          f"has {len(cells)} cells, the header has {len(header)} ({','.join(cells)[:60]!r})"))


def test_unterminated_quote_at_end(case):
    f = case.file("statements")
    line = f.append({"statement_id": "test-statement"})
    f.write(f.text().rstrip("\r\n") + ',"unterminated\n')
    case.rejects(case.msg("statements", line, "(row)", "malformed CSV: unexpected end of data"))


def test_unterminated_quote_in_the_middle(case):
    """The quote swallows the rest of the file: reported where the record starts, nothing cascades."""
    f = case.file("incidents")
    header, lines, records = f.records()
    start, _, row = records[0]
    lines[start - 1] = lines[start - 1].replace(f"{row['incident_id']},", f'{row["incident_id"]},"x', 1)
    f.write("".join(lines))
    case.rejects(prefixes=(f"{case.raw}/incidents.csv:{start}: (row): malformed CSV: ",), absent=("no incidents row",))


def test_text_after_closing_quote(case):
    f = case.file("statements")
    line = f.append({"statement_id": "test-statement"})
    f.write(f.text().replace("test-statement,", 'test-statement,"quoted"tail', 1))
    case.rejects(case.msg("statements", line, "(row)", "malformed CSV: ',' expected after '\"'"))


def test_error_after_multiline_field_is_on_the_line_the_record_starts(case):
    f = case.file("incidents")
    if len(f.rows()) < 2:
        f.append(dict(f.first(), incident_id="test-incident"))
    first, second = (r["incident_id"] for r in f.rows()[:2])
    before = f.line_of(second)
    first_line = f.set(first, notes="First line of the note,\nsecond line,\nthird line.")
    second_line = f.set(second, grading="maybe")
    assert second_line == before + 2
    problems = case.rejects(case.msg("incidents", second_line, "grading", allowed("incidents", "grading", "maybe")))
    assert len(problems) == 1
    # and a problem in the multi-line record itself is reported on its first line
    f.set(first, title="")
    case.rejects(case.msg("incidents", first_line, "title", "required, but empty ('')"),
                 case.msg("incidents", second_line, "grading", allowed("incidents", "grading", "maybe")))


def test_blank_lines_are_skipped_and_counted(case):
    f = case.file("statements")
    rows = f.rows()
    key = rows[-1]["statement_id"]
    line = f.line_of(key)
    text = f.text().split("\n")
    text[line - 1:line - 1] = ["", ""]
    f.write("\n".join(text))
    line = f.set(key, statement_type="claim")
    case.rejects(case.msg("statements", line, "statement_type", allowed("statements", "statement_type", "claim")))


# --- Encoding -------------------------------------------------------------------------------------

def _dump(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as conn:
        return {t.name: conn.execute(f'SELECT * FROM "{t.name}" ORDER BY [{t.pk}]').fetchall() for t in schema.TABLES}


def test_bom_and_crlf_are_accepted_and_give_the_same_data(case, tmp_path):
    before = _dump(case.db)
    for table in schema.TABLES:
        f = case.file(table.name)
        header, _, records = f.records()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerows([header, *([row[h] for h in header] for _, _, row in records)])
        f.path.write_bytes(BOM + buf.getvalue().encode("utf-8"))
    assert (case.raw / "incidents.csv").read_bytes().startswith(BOM)
    assert b"\r\n" in (case.raw / "incidents.csv").read_bytes()
    case.accepts()
    assert _dump(case.db) == before


def test_bom_and_crlf_line_numbers(case):
    f = case.file("figures")
    f.write(f.text().replace("\r\n", "\n").replace("\n", "\r\n"))
    f.path.write_bytes(BOM + f.path.read_bytes())
    key = f.rows()[-1]["figure_id"]
    line = f.set(key, metric="deaths")
    case.rejects(case.msg("figures", line, "metric", allowed("figures", "metric", "deaths")))


def _break_utf8(f: RawFile, key: str, column: str) -> tuple[int, int]:
    """Put an invalid byte into a cell; return (line, 1-based byte position in that line)."""
    row = f.first(lambda r: r[f.pk] == key)
    line = f.set(key, **{column: "@@BAD@@" + row[column]})
    data = f.path.read_bytes().replace(b"@@BAD@@", b"\xff", 1)
    f.path.write_bytes(data)
    position = data.split(b"\n")[line - 1].index(b"\xff") + 1
    return line, position


def test_invalid_utf8_near_the_top_of_a_file_names_the_line(case):
    f = case.file("sources")
    line, position = _break_utf8(f, f.rows()[0]["source_id"], "title")
    assert f.path.read_bytes().index(b"\xff") < 8192
    problems = case.rejects(case.msg("sources", line, "(file)", f"not valid UTF-8 (byte b'\\xff' at position {position})"))
    assert not any("missing column" in p for p in problems), problems


def test_invalid_utf8_in_a_large_file_names_the_line(case):
    f = case.file("statements")
    row = f.first()
    f.append_many([dict(row, statement_id=f"test-statement-{i}") for i in range(300)])  # past 8 KB chunks
    assert f.path.stat().st_size > 3 * 8192
    line, position = _break_utf8(f, "test-statement-250", "quote")
    case.rejects(case.msg("statements", line, "(file)", f"not valid UTF-8 (byte b'\\xff' at position {position})"))


# --- All problems at once, sorted ------------------------------------------------------------------

def test_problems_in_several_files_are_all_reported_sorted(case):
    """Problems come in load order of the files (not alphabetical), then line, then column."""
    actors, places, figures = case.file("actors"), case.file("places"), case.file("figures")
    a_rows = actors.rows()
    # made in the opposite order to the one expected
    fig_line = figures.set(figures.first()["figure_id"], metric="deaths")
    place_line = places.set(places.first()["place_id"], place_type="castle", admin1=" Raqqa")
    last_actor = actors.set(a_rows[-1]["actor_id"], url="not a url")
    first_actor = actors.set(a_rows[0]["actor_id"], description="")
    expected = [
        case.msg("actors", first_actor, "description", "required, but empty ('')"),
        case.msg("actors", last_actor, "url", "not an absolute http(s) URL ('not a url')"),
        case.msg("places", place_line, "admin1", "has leading or trailing spaces (' Raqqa')"),
        case.msg("places", place_line, "place_type", allowed("places", "place_type", "castle")),
        case.msg("figures", fig_line, "metric", allowed("figures", "metric", "deaths")),
    ]
    problems = case.rejects(*expected)
    assert problems == expected


# --- The --raw argument as given -----------------------------------------------------------------

@pytest.mark.parametrize("form", ["relative", "trailing-slash", "dot-relative"])
def test_messages_use_the_raw_argument_as_given(case, form):
    rel = os.path.relpath(case.raw, ROOT)  # build.py runs in the repository folder
    raw_arg = {"relative": rel, "trailing-slash": f"{case.raw}/", "dot-relative": f"./{rel}"}[form]
    shown = raw_arg.rstrip("/")
    f = case.file("incidents")
    line = f.set(f.first()["incident_id"], grading="maybe")
    case.rejects(case.msg("incidents", line, "grading", allowed("incidents", "grading", "maybe"), shown=shown), raw_arg=raw_arg)


def test_the_cut_of_raw_keeps_what_the_cases_pick(cut_raw):
    """The cut has rows of every table and of every kind the cases pick (a case with nothing to pick would be
    skipped), its incidents are raw/'s first, and its records are raw/'s, line for line."""
    for table in schema.TABLES:
        cut, whole = RawFile(cut_raw, table.name), RawFile(RAW, table.name)
        assert cut.rows(), f"the cut has no {table.name}"
        assert cut.header == whole.header and cut.has_bom == whole.has_bom
        _, lines, records = cut.records()
        whole_text = whole.text()
        for start, end, _ in records:
            assert "".join(lines[start - 1:end]) in whole_text, table.name
    assert [r["incident_id"] for r in RawFile(cut_raw, "incidents").rows()] == [
        r["incident_id"] for r in RawFile(RAW, "incidents").rows()[:CUT_INCIDENTS]]
    figures = RawFile(cut_raw, "figures").rows()
    assert any(INC(r) for r in figures) and any(not INC(r) for r in figures)
    assert any(GEO(r) for r in RawFile(cut_raw, "places").rows())


def test_missing_raw_folder(tmp_path):
    result = run_build("--raw", str(tmp_path / "nowhere"), "--db", str(tmp_path / "civcas.db"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'nowhere'}: no such folder" in result.stderr
    assert list(tmp_path.iterdir()) == []


# --- --check and good builds -----------------------------------------------------------------------

@pytest.fixture
def private_tmpdir(tmp_path, monkeypatch) -> Path:
    """Point the build's TMPDIR at an empty folder, to see that --check leaves nothing there either."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def test_check_on_good_data_writes_nothing(raw_copy, tmp_path, private_tmpdir):
    db = tmp_path / "out" / "civcas.db"
    db.parent.mkdir()
    result = run_build("--raw", str(raw_copy), "--db", str(db), "--check")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("valid: ")
    assert not db.exists()
    assert list(db.parent.iterdir()) == []
    assert list(private_tmpdir.iterdir()) == []


def test_check_on_bad_data_fails_and_writes_nothing(raw_copy, tmp_path, private_tmpdir):
    db = tmp_path / "out" / "civcas.db"
    db.parent.mkdir()
    f = RawFile(raw_copy, "incidents")
    line = f.set(f.first()["incident_id"], grading="maybe")
    result = run_build("--raw", str(raw_copy), "--db", str(db), "--check")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert f"{raw_copy}/incidents.csv:{line}: grading: {allowed('incidents', 'grading', 'maybe')}" in lines
    assert lines[-1] == count_line(len(lines) - 1, "nothing written")
    assert list(db.parent.iterdir()) == []
    assert list(private_tmpdir.iterdir()) == []


def test_check_leaves_an_existing_database_alone(case):
    f = case.file("incidents")
    f.set(f.first()["incident_id"], grading="maybe")
    result = run_build("--raw", str(case.raw), "--db", str(case.db), "--check")
    assert result.returncode != 0
    assert sha256(case.db) == case.sha
    assert stray_files(case.db.parent) == []


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t.name: conn.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0] for t in schema.TABLES}


def test_good_build_is_idempotent_and_replaces_the_database(raw_copy, tmp_path):
    db = tmp_path / "civcas.db"
    with sqlite3.connect(db) as conn:  # an old database with a table the build does not make
        conn.execute("CREATE TABLE stale (x)")
    conn.close()
    first = run_build("--raw", str(raw_copy), "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith(f"built {db}: ")
    counts, inode = _counts(db), db.stat().st_ino
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'stale'").fetchone() == (0,)
    conn.close()
    second = run_build("--raw", str(raw_copy), "--db", str(db))
    assert second.returncode == 0, second.stderr
    assert second.stderr == first.stderr
    assert _counts(db) == counts
    assert db.stat().st_ino != inode, "the database was modified in place, not replaced"
    assert counts["incidents"] == len(RawFile(raw_copy, "incidents").rows())
    assert counts["figures"] == len(RawFile(raw_copy, "figures").rows())
    assert stray_files(tmp_path) == []


def test_actor_parent_cycles_are_rejected(case):
    """parent_id chains must end at an actor with no parent: a loop would leave top_id undefined."""
    actors = case.file("actors")
    first = actors.append({"actor_id": "test-cycle-a", "name": "A", "name_local": "", "actor_type": "person",
                           "country": "", "parent_id": "test-cycle-b", "description": "Test.", "url": ""})
    second = actors.append({"actor_id": "test-cycle-b", "name": "B", "name_local": "", "actor_type": "person",
                            "country": "", "parent_id": "test-cycle-a", "description": "Test.", "url": ""})
    case.rejects(
        case.msg("actors", first, "parent_id",
                 "parent chain loops back to this actor instead of reaching an actor with no parent ('test-cycle-b')"),
        case.msg("actors", second, "parent_id",
                 "parent chain loops back to this actor instead of reaching an actor with no parent ('test-cycle-a')"))
