"""The published site, in process: Datasette with the real metadata.yml, plugins and production settings.

Expectations never hard-code the data: each is computed by running SQL directly against the
built database with sqlite3, so the tests keep passing while curators add rows.
"""
from __future__ import annotations

import csv
import io
import math
import re
import sqlite3
import time
from urllib.parse import urlencode

import pytest
from datasette.utils import escape_fts
from markupsafe import escape

from bench.site import MAP_QUERY
from civcas.pagedata import FACETS
from conftest import ROOT, plugin_file, production_settings, registered_plugin, metadata_yml

DB = "civcas"
METADATA = metadata_yml()
DATABASE_META = METADATA["databases"][DB]
TABLE_META = DATABASE_META.get("tables", {})
COUNTED = FACETS  # tables and columns whose unfiltered pages show the build's counts
QUERIES = DATABASE_META["queries"]
SEED_SOURCE = "wilkins-2016-11-11-us-led-strike-kills-20"
RAQQA = (35.95, 39.0167)
SEARCHABLE = ("incidents", "figures", "sources")

pytestmark = pytest.mark.asyncio


# --- direct SQL against the built database ------------------------------------------------


def connect(built_db) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    conn.create_function("escape_fts", 1, escape_fts)  # Datasette registers it too
    return conn


def sql_rows(built_db, sql: str, params=None) -> list[dict]:
    with connect(built_db) as conn:
        return [dict(r) for r in conn.execute(sql, params or {})]


def sql_value(built_db, sql: str, params=None):
    with connect(built_db) as conn:
        row = conn.execute(sql, params or {}).fetchone()
    return None if row is None else row[0]


def heisha(built_db) -> dict:
    rows = sql_rows(built_db, "select * from incidents where title like '%Heisha%' order by incident_id")
    assert rows, "no incident with 'Heisha' in its title"
    return rows[0]


def query_params(sql: str) -> list[str]:
    """Named parameters of a canned query, as Datasette detects them (ignoring -- comments)."""
    code = "\n".join(line.split("--")[0] for line in sql.splitlines())
    code = re.sub(r"'[^']*'", "''", code)
    return sorted(set(re.findall(r"(?<!:):(\w+)", code)))


def query_sql(name: str) -> str:
    query = QUERIES[name]
    return query if isinstance(query, str) else query["sql"]


# Sample values for canned-query parameters, by parameter name, computed from the data.
def _sample(built_db, param: str) -> str:
    h = heisha(built_db)
    samples = {
        "incident": lambda: h["incident_id"],
        "perpetrator": lambda: "us-led-coalition",
        "belligerent": lambda: h["belligerent"],
        "from": lambda: h["date_start"],
        "to": lambda: h["date_end"],
        "latitude": lambda: str(h["latitude"]),
        "longitude": lambda: str(h["longitude"]),
        "km": lambda: "50",
        "source": lambda: SEED_SOURCE,
        "type": lambda: sql_value(built_db, "select source_type from sources where source_id = ?", [SEED_SOURCE]),
        "q": lambda: "Heisha",
        "kind": lambda: sql_value(built_db, "select kind from discrepancies order by discrepancy_id limit 1")
        or "misspelling",
    }
    assert param in samples, f"no sample value for canned-query parameter :{param}; add one to _sample()"
    return samples[param]()


async def get_json(ds, path: str, **params):
    response = await ds.client.get(path + (("&" if "?" in path else "?") + urlencode(params) if params else ""))
    assert response.status_code == 200, (path, params, response.text[:500])
    return response.json()


async def run_canned(ds, name: str, params: dict) -> dict:
    data = await get_json(ds, f"/{DB}/{name}.json", _shape="objects", **params)
    assert data["ok"] is True and not data.get("error"), data
    return data


async def table_names(ds, hidden: bool = False) -> list[str]:
    db = ds.get_database(DB)
    names = await db.table_names()
    hidden_names = set(await db.hidden_table_names())
    return [t for t in names if hidden or t not in hidden_names]


# --- home page and links ------------------------------------------------------------------


async def test_home_page_shows_title_and_links(ds):
    response = await ds.client.get("/")
    assert response.status_code == 200
    html = response.text
    assert str(escape(METADATA["title"])) in html
    assert f'href="/{DB}"' in html
    # The front page links the main questions (templates/index.html); the database page keeps the longer list.
    for href in (f"/{DB}/incidents", f"/{DB}/admitted_vs_reported", f"/{DB}/belligerent_vs_monitors",
                 "/docs/methodology", "/docs/data-dictionary"):
        assert f'href="{href}' in html, href


async def test_database_page_lists_tables_views_and_queries(ds):
    response = await ds.client.get(f"/{DB}")
    assert response.status_code == 200
    for name in await table_names(ds):
        assert f'href="/{DB}/{name}"' in response.text, name
    for name in QUERIES:
        assert f'href="/{DB}/{name}"' in response.text, name


async def test_home_page_internal_links_resolve(ds):
    home = (await ds.client.get("/")).text
    hrefs = set(re.findall(r'href="(/[^"#]*)"', METADATA["description_html"] + home))
    for href in sorted(hrefs):
        response = await ds.client.get(href.replace("&amp;", "&"))
        assert response.status_code in (200, 302), href


async def test_every_table_and_view_returns_200(ds, built_db):
    db = ds.get_database(DB)
    names = await table_names(ds, hidden=True) + await db.view_names()
    expected = {r["name"] for r in sql_rows(built_db, "select name from sqlite_master where type in ('table', 'view')")}
    assert set(names) == expected
    for name in names:
        html = await ds.client.get(f"/{DB}/{name}")
        assert html.status_code == 200, name
        data = await get_json(ds, f"/{DB}/{name}.json", _shape="objects", _size="max")
        count = sql_value(built_db, f'select count(*) from "{name}"')
        assert len(data["rows"]) == min(count, ds.setting("max_returned_rows")), name


async def walk_pages(ds, path: str, size: int) -> list[dict]:
    rows, url = [], f"{path}.json?_shape=objects&_size={size}"
    while url:
        data = await get_json(ds, url)
        rows += data["rows"]
        url = data.get("next_url")
        url = url and url.split("://", 1)[-1].split("/", 1)[-1]
        url = url and "/" + url
    return rows


async def test_paging_returns_every_row_exactly_once(ds, built_db):
    """Following next_url through every table and view returns each row once (no default sort on ties)."""
    db = ds.get_database(DB)
    for name in await table_names(ds) + await db.view_names():
        expected = sql_rows(built_db, f'select * from "{name}"')
        rows = await walk_pages(ds, f"/{DB}/{name}", size=max(7, len(expected) // 20))
        key = lambda r: repr(sorted(r.items()))  # noqa: E731
        assert sorted(map(key, rows)) == sorted(map(key, expected)), name


async def test_every_table_view_and_column_is_described(ds):
    db = ds.get_database(DB)
    missing = []
    for name in await table_names(ds) + await db.view_names():
        meta = TABLE_META.get(name, {})
        if not meta.get("description") and not meta.get("description_html"):
            missing.append(f"{name}: no description")
        described = meta.get("columns", {})
        columns = await db.table_columns(name)
        for column in columns:
            if not described.get(column):
                missing.append(f"{name}.{column}: no description")
        for column in described:
            if column not in columns:
                missing.append(f"{name}.{column}: described but not in the database")
    assert not missing, "\n".join(missing)


async def test_hidden_tables_are_only_full_text_indexes(ds):
    db = ds.get_database(DB)
    hidden = set(await db.hidden_table_names())
    assert all(re.search(r"_fts(_\w+)?$", name) or name.startswith("sqlite_") for name in hidden), hidden


async def test_row_page(ds, built_db):
    h = heisha(built_db)
    response = await ds.client.get(f"/{DB}/incidents/{h['incident_id']}")
    assert response.status_code == 200
    assert str(escape(h["title"])) in response.text


# --- canned queries ----------------------------------------------------------------------


async def test_every_canned_query_has_title_and_description():
    for name, query in QUERIES.items():
        assert isinstance(query, dict) and query.get("title") and (query.get("description") or
                                                                  query.get("description_html")), name
        # every query links the methodology section it rests on, and carries the site's licence
        assert 'href="/docs/methodology#' in query.get("description_html", ""), name
        assert query.get("license") == METADATA["license"], name


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_canned_query_without_params(ds, built_db, name):
    params = {p: "" for p in query_params(query_sql(name))}
    data = await run_canned(ds, name, {})
    expected = sql_rows(built_db, query_sql(name), params)
    assert data["rows"] == expected[: ds.setting("max_returned_rows")]
    html = await ds.client.get(f"/{DB}/{name}")
    assert html.status_code == 200 and 'class="message-error"' not in html.text


@pytest.mark.parametrize("name", sorted(n for n in QUERIES if query_params(query_sql(n))))
async def test_canned_query_with_sample_params(ds, built_db, name):
    names = query_params(query_sql(name))
    params = {p: _sample(built_db, p) for p in names}
    data = await run_canned(ds, name, params)
    expected = sql_rows(built_db, query_sql(name), params)
    assert data["rows"] == expected[: ds.setting("max_returned_rows")]
    html = await ds.client.get(f"/{DB}/{name}?" + urlencode(params))
    assert html.status_code == 200 and 'class="message-error"' not in html.text


async def test_datasette_detects_the_same_params(ds):
    db = ds.get_database(DB)
    from datasette.utils import derive_named_parameters

    for name in QUERIES:
        detected = sorted(set(await derive_named_parameters(db, query_sql(name))))
        assert detected == query_params(query_sql(name)), name


async def test_claims_for_heisha_include_sohr_20_civilians_killed(ds, built_db):
    h = heisha(built_db)
    sohr = sql_value(built_db, "select name from actors where actor_id = 'sohr'")
    rows = (await run_canned(ds, "claims_for_incident", {"incident": h["incident_id"]}))["rows"]
    assert rows and {r["incident_id"] for r in rows} == {h["incident_id"]}
    assert any(r["claimant"] == sohr and r["metric"] == "civilians_killed" and r["value_min"] == 20 for r in rows), rows
    everything = (await run_canned(ds, "claims_for_incident", {"incident": ""}))["rows"]
    count = sql_value(built_db, "select count(*) from figures where incident_id is not null")
    assert len(everything) == min(count, 100)  # the first 100; the full list streams (incident_claims.csv)


def great_circle_km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(math.radians(lon2 - lon1))
    return 6371.0 * math.acos(max(-1.0, min(1.0, c)))


@pytest.mark.parametrize("params", [{}, {"latitude": str(RAQQA[0]), "longitude": str(RAQQA[1]), "km": "100"}])
async def test_incidents_near_raqqa(ds, built_db, params):
    rows = (await run_canned(ds, "incidents_near", params))["rows"]
    ids = [r["incident_id"] for r in rows]
    assert heisha(built_db)["incident_id"] in ids
    mosul = [r["incident_id"] for r in sql_rows(
        built_db, "select incident_id from incidents where title like '%Mosul%' or place like '%Mosul%' "
                  "or incident_id like '%mosul%'")]
    assert mosul and not set(mosul) & set(ids)
    iraq = {r["incident_id"] for r in sql_rows(built_db, "select incident_id from incidents where country = 'IQ'")}
    assert not iraq & set(ids)  # the Iraqi border is some 200 km from Raqqa
    # Independent check: every geolocated incident within 100 km by Python's great-circle distance.
    within = {
        r["incident_id"]
        for r in sql_rows(built_db, "select incident_id, latitude, longitude from incidents where latitude is not null")
        if great_circle_km(*RAQQA, r["latitude"], r["longitude"]) <= 99.9
    }
    assert within <= set(ids)
    distances = [r["distance_km"] for r in rows]
    assert distances == sorted(distances) and all(d <= 100 for d in distances)


async def test_incidents_near_works_without_sqlite_math_functions(built_db):
    """plugins/civcas_sql_functions.py gives the same answer as SQLite's own math functions."""
    module = plugin_file("civcas_sql_functions", "civcas_sql_functions_test")
    params = {"latitude": "", "longitude": "", "km": ""}
    builtin = sql_rows(built_db, query_sql("incidents_near"), params)
    with connect(built_db) as conn:
        assert module.register_math_functions(conn, force=True)
        python = [dict(r) for r in conn.execute(query_sql("incidents_near"), params)]
        assert module.register_math_functions(conn) == []  # nothing missing: nothing replaced
    assert python == builtin


async def test_incidents_near_box_keeps_every_place_of_the_circle(tmp_path):
    """incidents_near measures only the places in a box around the circle and keeps the 100 nearest: the same
    answer as measuring every place, near the poles, across 180 degrees and at every size (places all over the
    globe, seeded)."""
    import random
    rng = random.Random(20161111)
    conn = sqlite3.connect(tmp_path / "near.db")
    conn.execute("create table place_incidents (place_id text primary key, latitude real, longitude real, "
                 "incidents integer)")
    conn.execute("create table incidents (incident_id text primary key, title text, date_start text, place text, "
                 "geo_precision integer, civilians_killed_min integer, civilians_killed_max integer, "
                 "latitude real, longitude real, popup text, place_id text)")
    conn.execute("create index idx_place_incidents_latitude_longitude on place_incidents (latitude, longitude)")
    places = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(3000)]
    places += [(89.6, 0.0), (89.6, 180.0), (89.9, -90.0), (-89.7, 45.0), (0.5, 179.95), (0.5, -179.95),
               (70.0, 4.5), (70.0, -4.5), (35.95, 39.0167)]
    for n, (lat, lon) in enumerate(places):
        incidents = 1 + n % 3
        conn.execute("insert into place_incidents values (?, ?, ?, ?)", (f"p{n:05d}", lat, lon, incidents))
        for k in range(incidents):
            conn.execute("insert into incidents (incident_id, place_id, latitude, longitude) values (?, ?, ?, ?)",
                         (f"i{n:05d}-{k}", f"p{n:05d}", lat, lon))
    sql = query_sql("incidents_near")
    # The same query measuring every place: no box, no cut at the 100 nearest places.
    everywhere = re.sub(r"\n\s*where p\.latitude between b\.south.*?b\.lon \+ b\.dlon\)", "", sql, flags=re.S)
    everywhere = re.sub(r"order by distance_km, place_id\s*limit 100", "", everywhere)
    assert everywhere.count("b.dlon") == 0 and "limit 100)" not in everywhere
    centres = [(89.8, 10.0, 300), (0.5, 180.0, 50), (0.5, -180.0, 50), (70.0, 0.0, 200), (-89.9, 0.0, 100),
               (35.95, 39.0167, 100), (0.0, 0.0, 20000)]
    centres += [(rng.uniform(-90, 90), rng.uniform(-180, 180), rng.choice([50, 500, 2000])) for _ in range(40)]
    found = 0
    for lat, lon, km in centres:
        params = {"latitude": str(lat), "longitude": str(lon), "km": str(km)}
        got = conn.execute(sql, params).fetchall()
        assert got == conn.execute(everywhere, params).fetchall(), params
        found += len(got)
    assert found > 1000  # the centres do find places
    conn.close()


async def test_incidents_in_date_range(ds, built_db):
    h = heisha(built_db)
    rows = (await run_canned(ds, "incidents_in_date_range", {"from": h["date_start"], "to": h["date_end"]}))["rows"]
    assert h["incident_id"] in [r["incident_id"] for r in rows]
    assert all(r["date_end"] >= h["date_start"] and r["date_start"] <= h["date_end"] for r in rows)
    nothing = (await run_canned(ds, "incidents_in_date_range", {"from": "1900-01-01", "to": "1900-01-02"}))["rows"]
    assert nothing == []


async def test_search_everything_finds_heisha(ds, built_db):
    h = heisha(built_db)
    rows = (await run_canned(ds, "search_everything", {"q": "Heisha"}))["rows"]
    assert {"kind": "incident", "id": h["incident_id"]}.items() <= next(
        r for r in rows if r["kind"] == "incident" and r["id"] == h["incident_id"]).items()


@pytest.mark.parametrize("q", ['"', "   ", "-", "*", "NEAR(", 'al-Heisha "village'])
async def test_search_everything_survives_odd_input(ds, built_db, q):
    data = await run_canned(ds, "search_everything", {"q": q})
    assert data["rows"] == sql_rows(built_db, query_sql("search_everything"), {"q": q})


async def test_source_report_defaults_to_the_seed_article(ds, built_db):
    default = (await run_canned(ds, "source_report", {}))["rows"]
    seed = (await run_canned(ds, "source_report", {"source": SEED_SOURCE}))["rows"]
    assert default == seed
    n = sql_value(built_db, "select (select count(*) from figures where source_id = :s) + "
                            "(select count(*) from statements where source_id = :s)", {"s": SEED_SOURCE})
    assert len(seed) == n > 0


async def test_aggregate_tolls_keep_all_party_figures(ds, built_db):
    rows = (await run_canned(ds, "aggregate_tolls_by_claimant", {}))["rows"]
    count = sql_value(built_db, "select count(*) from figures where incident_id is null")
    assert len(rows) == min(count, 100)  # the first 100; the full list streams (aggregate_claims.csv)
    coalition = (await run_canned(ds, "aggregate_tolls_by_claimant", {"perpetrator": "us-led-coalition"}))["rows"]
    assert len(coalition) == min(100, sql_value(
        built_db, "select count(*) from figures where incident_id is null and scope_perpetrator = 'us-led-coalition'"))


async def test_headline_numbers_match_counts(ds, built_db):
    rows = {r["headline"]: r for r in (await run_canned(ds, "headline_numbers", {}))["rows"]}
    assert rows["incidents recorded"]["value_min"] == sql_value(built_db, "select count(*) from incidents")
    assert rows["casualty claims recorded"]["value_min"] == sql_value(built_db, "select count(*) from figures")
    assert rows["sources recorded"]["value_min"] == sql_value(built_db, "select count(*) from sources")


# --- facets, labels and search --------------------------------------------------------------


async def test_configured_facets(ds, built_db):
    """Facets Datasette computes per request: the metadata's, on the tables whose pages are not given the build's
    counts, and on a filtered page of a counted table (figures of one incident)."""
    heisha_id = sql_value(built_db, "select incident_id from incidents where title like '%Heisha%' limit 1")
    checked = 0
    for table, meta in TABLE_META.items():
        facets = meta.get("facets") or []
        if not facets:
            continue
        where = {}
        if table in COUNTED:  # a filtered page: one incident's rows, or one country's places
            where = {"country": "SY"} if table == "places" else {"incident_id": heisha_id}
        data = await get_json(ds, f"/{DB}/{table}.json", _labels="on", **where)
        size = meta.get("facet_size") or ds.setting("default_facet_size")
        assert set(data["facet_results"]) == set(facets), table
        sql_where = "".join(f' and "{k}" = :{k}' for k in where)
        for column in facets:
            expected = sql_rows(built_db, f'select "{column}" as value, count(*) as count from "{table}" '
                                          f'where "{column}" is not null{sql_where} group by "{column}" '
                                          f"order by count desc, value limit {size}", where)
            got = data["facet_results"][column]["results"]
            assert [(r["value"], r["count"]) for r in got] == [(e["value"], e["count"]) for e in expected], (table, column)
            checked += 1
    assert checked


async def test_facet_counts_are_the_tables_counts(built_db):
    """facet_counts (civcas/pagedata.py) holds, for every counted column, its 100 most frequent values and the
    number of distinct values, as a GROUP BY over the table gives them."""
    for table, columns in COUNTED.items():
        for column in columns:
            groups = sql_rows(built_db, f'select "{column}" as value, count(*) as count from "{table}" '
                                        f'where "{column}" is not null and "{column}" != \'\' group by "{column}"')
            stored = sql_rows(built_db, "select rank, value, count from facet_counts "
                                        "where table_name = ? and column_name = ? order by rank", (table, column))
            assert stored and stored[0]["rank"] == 0 and stored[0]["count"] == len(groups), (table, column)
            expected = sorted(((str(g["value"]), g["count"]) for g in groups), key=lambda g: (-g[1], g[0]))[:100]
            assert [(r["value"], r["count"]) for r in stored[1:]] == expected, (table, column)


@pytest.mark.parametrize("table", list(COUNTED))
async def test_unfiltered_pages_show_the_builds_counts(ds, built_db, table):
    """An unfiltered page counts nothing per request (_nofacet) and shows the stored counts as Datasette's facets,
    linking to the filtered list."""
    meta = TABLE_META.get(table, {})
    size = meta.get("facet_size") or ds.setting("default_facet_size")
    html = (await ds.client.get(f"/{DB}/{table}")).text
    for column in COUNTED[table]:
        assert f'id="facet-{column}" data-column="{column}"' in html, column
        top = sql_rows(built_db, "select value, label, count from facet_counts where table_name = ? "
                                 "and column_name = ? and rank between 1 and ? order by rank", (table, column, size))
        for r in top:
            link = f'<a href="/{DB}/{table}?{urlencode({column: r["value"]})}">{escape(r["label"] or r["value"])}</a> {r["count"]:,}'
            assert link in html, (column, link)
    assert "_nofacet" not in html.split('<form class="filters"')[1].split("</form>")[0]  # filters keep their facets
    data = await get_json(ds, f"/{DB}/{table}.json")
    assert data["facet_results"] == {}


async def test_facet_labels_show_names(built_db):
    names = {r["actor_id"]: r["name"] for r in sql_rows(built_db, "select actor_id, name from actors")}
    stored = sql_rows(built_db, "select value, label from facet_counts where table_name = 'incidents' "
                                "and column_name = 'belligerent' and rank > 0")
    assert stored and all(r["label"] == names[r["value"]] for r in stored)


async def test_filtered_incidents_offer_facets_as_links(ds, built_db):
    html = (await ds.client.get(f"/{DB}/incidents?country=SY")).text
    assert 'class="facet-info' not in html  # nothing counted per request unless asked for
    links = html.split('class="civcas-facet-links"')[1].split("</p>")[0]
    for column in COUNTED["incidents"]:
        assert f'href="/{DB}/incidents?country=SY&amp;_facet={column}"' in links, column
    data = await get_json(ds, f"/{DB}/incidents.json", country="SY", _facet="year")
    expected = sql_rows(built_db, "select year as value, count(*) as count from incidents where country = 'SY' "
                                  "group by year order by count desc, year limit 10")
    assert [(r["value"], r["count"]) for r in data["facet_results"]["year"]["results"]] == \
        [(e["value"], e["count"]) for e in expected]


@pytest.mark.parametrize("column", COUNTED["incidents"])
async def test_a_page_filtered_by_a_counted_value_shows_its_stored_count(ds, built_db, column):
    """plugins/civcas_facets.py: `?column=value` (a facet's link) shows the build's count of that value and does not
    count again (`_nocount`, left out of the filter form); with a second filter Datasette counts as usual."""
    top = sql_rows(built_db, "select value, count from facet_counts where table_name = 'incidents' "
                             "and column_name = ? and rank = 1", (column,))[0]
    expected = sql_value(built_db, f'select count(*) from incidents where "{column}" = ?', (top["value"],))
    assert top["count"] == expected
    for arg in (column, f"{column}__exact"):
        html = (await ds.client.get(f"/{DB}/incidents?" + urlencode({arg: top["value"]}))).text
        assert f"<h3>{expected:,} row" in html, arg
        form = html.split('<form class="filters"')[1].split("</form>")[0]
        assert "_nocount" not in form and "_nofacet" not in form
        # Datasette was asked not to count: its export links still carry the argument
        assert "_nocount=1" in html.split('class="export-links"')[1].split("</p>")[0]
    other = sql_rows(built_db, f'select "{column}" as value, grading, count(*) as n from incidents '
                               f'where "{column}" is not null group by 1, 2 order by 3 desc limit 1')[0]
    html = (await ds.client.get(f"/{DB}/incidents?" + urlencode({column: other["value"],
                                                                  "grading": other["grading"]}))).text
    assert f"<h3>{other['n']:,} row" in html


def foreign_keys(built_db) -> list[tuple[str, str, str, str]]:
    out = []
    tables = [r["name"] for r in sql_rows(built_db, "select name from sqlite_master where type = 'table' "
                                                    "and name not like 'sqlite_%' and name not like '%_fts%'")]
    with connect(built_db) as conn:
        for table in tables:
            for fk in conn.execute(f'pragma foreign_key_list("{table}")'):
                out.append((table, fk["from"], fk["table"], fk["to"]))
    return out


async def test_foreign_keys_show_labels(ds, built_db):
    checked = 0
    for table, column, other, other_pk in foreign_keys(built_db):
        label = TABLE_META.get(other, {}).get("label_column")
        if not label:
            continue
        labels = {r["k"]: r["label"] for r in sql_rows(built_db, f'select "{other_pk}" as k, "{label}" as label from "{other}"')}
        data = await get_json(ds, f"/{DB}/{table}.json", _labels="on", _shape="objects", _size="max")
        for row in data["rows"]:
            value = row[column]
            if value is None or (isinstance(value, dict) and value.get("value") is None):
                continue
            assert value == {"value": value["value"], "label": labels[value["value"]]}, (table, column, value)
            checked += 1
    assert checked


async def test_incidents_page_shows_belligerent_and_country_names(ds, built_db):
    html = (await ds.client.get(f"/{DB}/incidents?_size=50")).text
    for row in sql_rows(built_db, "select a.name as actor, a.actor_id, c.name as country, i.incident_id, i.title "
                                  "from incidents i join actors a on a.actor_id = i.belligerent "
                                  "left join countries c on c.country_code = i.country "
                                  "order by i.date_start desc, i.incident_id limit 50"):
        assert f'href="/{DB}/actors/{row["actor_id"]}">{escape(row["actor"])}</a>' in html
        assert f'href="/{DB}/incidents/{row["incident_id"]}">{escape(row["title"])}</a>' in html
        if row["country"]:
            assert f">{escape(row['country'])}</a>" in html


def search_term(built_db, table: str) -> str:
    """A word taken from the data: the longest word of the first text that has one."""
    if table == "incidents":
        return "Heisha"
    sql = {
        "figures": "select quote as text from figures order by figure_id",
        "sources": f"select title as text from sources order by source_id = '{SEED_SOURCE}' desc, source_id",
    }[table]
    for row in sql_rows(built_db, sql):
        words = sorted(re.findall(r"[A-Za-z]{5,}", row["text"] or ""), key=len, reverse=True)
        if words:
            return words[0]
    raise AssertionError(f"no word to search {table} for")


@pytest.mark.parametrize("table", SEARCHABLE)
async def test_search_box(ds, built_db, table):
    db = ds.get_database(DB)
    assert await db.fts_table(table) == f"{table}_fts"
    html = (await ds.client.get(f"/{DB}/{table}")).text
    assert 'name="_search"' in html
    term = search_term(built_db, table)
    pk = (await db.primary_keys(table))[0]
    data = await get_json(ds, f"/{DB}/{table}.json", _search=term, _shape="array", _size="max")
    expected = sql_rows(built_db, f'select "{pk}" as pk from "{table}" where rowid in '
                                  f'(select rowid from "{table}_fts" where "{table}_fts" match escape_fts(?))', [term])
    assert expected, (table, term)
    assert sorted(r[pk] for r in data) == sorted(r["pk"] for r in expected)


async def test_search_takes_the_cheapest_way_at_a_million(ds):
    """plugins/civcas_search.py's choice, against what was measured at 1,000,000 incidents with pages of 50
    (docs/performance.md, "Site"): a word in 30 % of them is probed, one in 6 % listed, one in 0.1 % read
    Datasette's way."""
    way = registered_plugin("civcas_search").way
    assert way(305_000, 1_000_000, 50) == "probe"
    assert way(1_000_000, 1_000_000, 50) == "probe"
    assert way(59_392, 1_000_000, 50) == "list"
    assert way(2_000, 1_000_000, 50) == "list"
    assert way(998, 1_000_000, 50) is None
    assert way(0, 1_000_000, 50) is None


@pytest.mark.parametrize("chosen", ["list", "probe"])
async def test_common_word_search_walks_the_list_in_order(ds, built_db, chosen, monkeypatch):
    """plugins/civcas_search.py: a word matching a large share of the incidents is searched by walking the list's
    index in its order (here in pages of 3 rows, each way forced by its cost); every page, the order and the
    count are as Datasette's own."""
    plugin = registered_plugin("civcas_search")
    monkeypatch.setattr(plugin, "COST_PROBE" if chosen == "probe" else "COST_LIST", 0.0)
    word = "strike"
    expected = [r["incident_id"] for r in sql_rows(
        built_db, "select incident_id from incidents where rowid in (select rowid from incidents_fts where "
                  "incidents_fts match :w) order by date_start desc, incident_id", {"w": word})]
    total = sql_value(built_db, "select max(rowid) from incidents")
    assert plugin.way(len(expected), total, 3) == chosen
    clause = {"list": "+incidents.rowid in (select rowid from incidents_fts",
              "probe": "exists (select 1 from incidents_fts"}[chosen]
    data = await get_json(ds, f"/{DB}/incidents.json", _search=word, _size="3")
    assert clause in data["query"]["sql"]
    got, url = [], f"/{DB}/incidents.json?" + urlencode({"_search": word, "_size": "3", "_shape": "objects"})
    while url:
        page = (await ds.client.get(url.replace("http://localhost", ""))).json()
        assert clause in page["query"]["sql"]
        got += [r["incident_id"] for r in page["rows"]]
        url = page["next_url"]
    assert got == expected
    html = (await ds.client.get(f"/{DB}/incidents?" + urlencode({"_search": word, "_size": "3"}))).text
    assert f"<h3>{len(expected):,} rows" in html and f'name="_search" value="{word}"' in html


async def test_rare_word_search_is_datasettes_own(ds, built_db):
    word = "Heisha"
    data = await get_json(ds, f"/{DB}/incidents.json", _search=word)
    total = sql_value(built_db, "select max(rowid) from incidents")
    assert registered_plugin("civcas_search").way(len(data["rows"]), total, 50) is None
    assert "rowid in (select rowid from incidents_fts" in data["query"]["sql"]
    assert "+incidents.rowid" not in data["query"]["sql"]
    assert data["filtered_table_rows_count"] == len(data["rows"]) > 0


async def test_search_heisha_finds_the_incident(ds, built_db):
    data = await get_json(ds, f"/{DB}/incidents.json", _search="Heisha", _shape="array")
    assert heisha(built_db)["incident_id"] in [r["incident_id"] for r in data]


# --- JSON, CSV and download -------------------------------------------------------------------


async def test_json_shapes(ds, built_db):
    limit = ds.setting("max_returned_rows")
    # incidents list newest first (metadata sort_desc: date_start), ties broken by id (plugins/civcas_paging.py)
    ids = [r["incident_id"] for r in sql_rows(
        built_db, f"select incident_id from incidents order by date_start desc, incident_id limit {limit}")]
    array = await get_json(ds, f"/{DB}/incidents.json", _shape="array", _size="max")
    assert isinstance(array, list) and [r["incident_id"] for r in array] == ids
    objects = await get_json(ds, f"/{DB}/incidents.json", _shape="objects", _size="max")
    assert isinstance(objects["rows"], list) and objects["rows"] == array
    columns = [r["name"] for r in sql_rows(built_db, "select name from pragma_table_info('incidents') order by cid")]
    assert list(array[0]) == columns
    default = await get_json(ds, f"/{DB}/incidents.json")
    assert default["columns"] == columns
    assert default["filtered_table_rows_count"] == sql_value(built_db, "select count(*) from incidents")


async def test_csv(ds, built_db):
    response = await ds.client.get(f"/{DB}/incidents.csv?_stream=on")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = sql_rows(built_db, "select incident_id, title from incidents")
    assert sorted((r["incident_id"], r["title"]) for r in rows) == sorted((e["incident_id"], e["title"]) for e in expected)
    streamed = await ds.client.get(f"/{DB}/figures.csv?_stream=on")
    assert streamed.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(streamed.text)))) == sql_value(built_db, "select count(*) from figures")
    canned = await ds.client.get(f"/{DB}/claims_for_incident.csv")
    assert canned.status_code == 200 and canned.text.startswith("incident_id,incident,metric")


async def test_a_streamed_csv_reads_pages_of_max_returned_rows(ds, built_db):
    """plugins/civcas_paging.py: Datasette 0.65.5 reads every page of a stream after the first at the table's page
    size (50) unless the URL says `_size=max`; every row is still there, read in pages of max_returned_rows."""
    from datasette.tracer import capture_traces

    total = sql_value(built_db, "select count(*) from figures")
    size = ds.setting("max_returned_rows")
    for path in [f"/{DB}/figures.csv?_stream=on", f"/{DB}/figures.csv?_stream=on&_size=max"]:
        traces = []
        with capture_traces(traces):
            response = await ds.client.get(path)
        assert len(list(csv.DictReader(io.StringIO(response.text)))) == total, path
        pages = [t for t in traces if re.match(r"select figure_id, ", t.get("sql", ""))]
        assert len(pages) == total // size + 1, (path, len(pages))
    # A page size the URL asks for is kept.
    traces = []
    with capture_traces(traces):
        response = await ds.client.get(f"/{DB}/figures.csv?_stream=on&_size=100")
    assert len(list(csv.DictReader(io.StringIO(response.text)))) == total
    assert len([t for t in traces if re.match(r"select figure_id, ", t.get("sql", ""))]) == total // 100 + 1


async def test_whole_database_download(ds, built_db):
    response = await ds.client.get(f"/{DB}.db")
    assert response.status_code == 200
    assert response.content.startswith(b"SQLite format 3\x00")
    assert response.content == built_db.read_bytes()
    assert int(response.headers["content-length"]) == built_db.stat().st_size
    assert "transfer-encoding" not in response.headers


async def test_database_download_ranges_and_etag(ds, built_db):
    """plugins/civcas_download.py: a resumable download (Range) and a revalidation (If-None-Match) of the file."""
    whole = built_db.read_bytes()
    part = await ds.client.get(f"/{DB}.db", headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    tail = await ds.client.get(f"/{DB}.db", headers={"range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == whole[-16:]
    assert (await ds.client.get(f"/{DB}.db", headers={"range": f"bytes={len(whole)}-"})).status_code == 416
    etag = (await ds.client.get(f"/{DB}.db")).headers["etag"]
    assert (await ds.client.get(f"/{DB}.db", headers={"if-none-match": etag})).status_code == 304


# --- security and limits -----------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "delete from incidents",
    "insert into actors (actor_id, name, actor_type, description) values ('x', 'x', 'person', 'x')",
    "update actors set name = 'x'",
    "drop table incidents",
    "PRAGMA writable_schema = 1",
    "pragma table_info(incidents)",
    "ATTACH DATABASE '/tmp/civcas-attack.db' AS other",
    "select 1; delete from incidents",
])
async def test_write_sql_pragma_and_attach_are_rejected(ds, built_db, sql):
    before = sql_value(built_db, "select count(*) from incidents") , sql_value(built_db, "select count(*) from actors")
    response = await ds.client.get(f"/{DB}.json?" + urlencode({"sql": sql}))
    assert response.status_code == 400, response.text[:300]
    assert response.json()["ok"] is False
    after = sql_value(built_db, "select count(*) from incidents"), sql_value(built_db, "select count(*) from actors")
    assert before == after


async def test_runaway_query_is_interrupted(ds):
    sql = ("with recursive counter(n) as (select 1 union all select n + 1 from counter where n < 1000000000) "
           "select count(*) from counter")
    start = time.monotonic()
    response = await ds.client.get(f"/{DB}.json?" + urlencode({"sql": sql}))
    elapsed = time.monotonic() - start
    assert response.status_code == 400 or "SQL Interrupted" in response.text
    assert "too long" in response.text or "Interrupted" in response.text
    assert elapsed < ds.setting("sql_time_limit_ms") / 1000 + 5


async def test_robots_txt(ds, built_db):
    """Crawlers may read tables, rows and docs, not the query-string space or exports (checked with a robots parser)."""
    from urllib.robotparser import RobotFileParser

    response = await ds.client.get("/robots.txt")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0] == "User-agent: *" and any(line.startswith("Sitemap: http") for line in lines)
    # Python's parser knows no wildcards: check the wildcard rules by hand, the rest with the parser.
    for rule in ("Disallow: /*?", "Disallow: /*.json", "Disallow: /*.csv", "Disallow: /*.db"):
        assert rule in lines
    parser = RobotFileParser()
    parser.parse([line for line in lines if line.startswith("User-agent") or "*" not in line.split(":", 1)[1]])
    incident = sql_value(built_db, "select incident_id from incidents order by incident_id limit 1")
    for allowed in ("/", f"/{DB}/incidents", f"/{DB}/incidents/{incident}", "/docs/methodology", "/-/static/app.css"):
        assert parser.can_fetch("*", allowed), allowed
    assert not parser.can_fetch("*", "/-/versions")
    sitemap = (await ds.client.get("/sitemap.xml")).text
    assert f"/{DB}/incidents/{incident}</loc>" in sitemap
    assert sitemap.count("<loc>") == sql_value(built_db, "select count(*) from incidents") + 4


@pytest.mark.parametrize("path", ["/", f"/{DB}/incidents", f"/{DB}/incidents.json", f"/{DB}/incidents_near",
                                  "/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js"])
async def test_referrer_policy_header(ds, path):
    policy = METADATA["plugins"]["datasette-referrer-policy"]["policy"]
    assert policy != "no-referrer"  # OpenStreetMap blocks tile requests without a Referer
    response = await ds.client.get(path)
    assert response.status_code == 200
    assert response.headers.get_list("referrer-policy") == [policy]


async def test_tile_layer_and_attribution_configured(ds):
    config = METADATA["plugins"]["datasette-cluster-map"]
    assert config["tile_layer"].startswith("https://")
    assert "OpenStreetMap" in config["tile_layer_options"]["attribution"]
    html = (await ds.client.get(f"/{DB}/incidents_near")).text
    assert "window.DATASETTE_CLUSTER_MAP_TILE_LAYER = " + '"' + config["tile_layer"] + '"' in html
    assert "openstreetmap.org/copyright" in html
    html = (await ds.client.get(f"/{DB}/incidents")).text  # plugins/civcas_map.py's own map, same tiles
    assert '"tile_layer": "' + config["tile_layer"] + '"' in html
    assert "openstreetmap.org/copyright" in html


@pytest.mark.parametrize("path", [f"/{DB}/incidents_in_date_range", f"/{DB}/incidents_near",
                                  f"/{DB}/children_and_women_killed", f"/{DB}/places"])
async def test_cluster_map_and_default_view_scripts_on_map_pages(ds, path):
    html = (await ds.client.get(path)).text
    assert "/-/static-plugins/datasette-cluster-map/datasette-cluster-map.js" in html
    assert "data-civcas-map-view" in html  # plugins/civcas_map.py
    config = METADATA["plugins"]["civcas-map"]
    (south, west), (north, east) = config["default_bounds"]
    assert -90 <= south < north <= 90 and -180 <= west < east <= 180


async def test_incidents_map_fetches_only_what_it_draws(ds):
    """The incidents list has plugins/civcas_map.py's map, not datasette-cluster-map's (which fetches every column,
    facets and a count, ~1 s a page at 1,000,000 incidents); its page gives the map the list's row count."""
    html = (await ds.client.get(f"/{DB}/incidents?country=SY")).text
    assert "datasette-cluster-map.js" not in html
    assert "civcasPatchLeaflet" in html and "/-/static-plugins/datasette-cluster-map/leaflet.markercluster.min.js" in html
    assert '"max_points": ' + str(METADATA["plugins"]["civcas-map"]["max_points"]) in html
    count = (await get_json(ds, f"/{DB}/incidents.json", country="SY"))["filtered_table_rows_count"]
    assert f'id="civcas-map" data-count="{count}"' in html
    # What the map asks for (bench/site.py MAP_QUERY): ids and coordinates, no facets, no count; paged by next_url.
    data = await get_json(ds, f"/{DB}/incidents.json?{MAP_QUERY}", country="SY")
    assert data["columns"] == ["incident_id", "latitude", "longitude"]
    assert data["facet_results"] == {} and data["filtered_table_rows_count"] is None
    for name in ("latitude", "longitude", "_nofacet", "_nocount", "arrays"):
        assert name in html.split("civcasPatchLeaflet")[-1], name  # the script asks for the same


@pytest.mark.parametrize("column", ["country", "belligerent", "year", "grading", "place_id", "belligerent_assessment",
                                    "provisional"])
async def test_filtered_incidents_list_reads_an_index_in_its_order(ds, built_db, column):
    """`?column=value`, newest first (the default sort): the query reads an index on (column, date_start) and stops
    after a page, instead of walking every incident or sorting every match (docs/performance.md, "Site" 2)."""
    value = sql_value(built_db, f'select "{column}" from incidents where "{column}" is not null limit 1')
    data = await get_json(ds, f"/{DB}/incidents.json", **{column: value})
    assert data["rows"]
    with connect(built_db) as conn:
        plan = " / ".join(r[3] for r in conn.execute("explain query plan " + data["query"]["sql"], data["query"]["params"]))
    assert f"USING INDEX idx_incidents_{column}_date_start ({column}=?)" in plan, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan, plan  # at most "FOR RIGHT PART OF ORDER BY": ties of one date


async def test_home_and_database_pages_are_kept_after_their_first_rendering(ds):
    """plugins/civcas_cache.py: the database is immutable, so `/` and `/civcas` are rendered once per Host."""
    for path in ("/", f"/{DB}"):
        first = await ds.client.get(path)
        started = time.perf_counter()
        again = await ds.client.get(path)
        assert again.status_code == first.status_code == 200
        assert again.text == first.text and again.headers.get("content-type") == first.headers.get("content-type")
        assert time.perf_counter() - started < 0.05, path
    other = await ds.client.get("/", headers={"host": "civcas.example.org"})
    assert "http://civcas.example.org/" in other.text  # the citation's address follows the Host
    assert "civcas.example.org" not in (await ds.client.get("/")).text
    # Anything with a query string is rendered as usual.
    query = await ds.client.get(f"/{DB}?sql=select+'fresh'+as+x")
    assert query.status_code == 200 and "fresh" in query.text


async def test_no_map_scripts_without_coordinates(ds):
    html = (await ds.client.get(f"/{DB}/actors")).text
    assert "datasette-cluster-map.js" not in html and "data-civcas-map-view" not in html


# --- README "Publishing" stays in sync with scripts/serve.sh and pyproject.toml -----------------------


def publishing_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Publishing\n" in readme, "README.md has no '## Publishing' section"
    section = readme.split("\n## Publishing\n", 1)[1]
    return section.split("\n## ", 1)[0]


def publish_commands() -> list[str]:
    commands = re.findall(r"datasette publish \w+ .*?(?:\n```)", publishing_section(), flags=re.S)
    assert len(commands) >= 2, "expected the cloudrun and fly publish commands"
    return commands


async def test_publish_extra_options_match_serve_settings():
    expected = production_settings()
    for command in publish_commands():
        options = re.findall(r'--extra-options "([^"]*)"', command)
        assert len(options) == 1, command[:60]
        settings = {name: {"on": True, "off": False}.get(value, int(value) if value.isdigit() else value)
                    for name, value in re.findall(r"--setting (\w+) (\S+)", options[0])}
        assert settings == expected, f"README publish --extra-options differ from scripts/serve.sh: {command[:40]}"


async def test_publish_commands_pin_the_project_dependencies():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = [d.replace(" ", "") for d in deps if d.startswith("datasette")]
    assert pins and all("==" in pin for pin in pins), pins
    for command in publish_commands():
        for pin in pins:
            assert f"--install {pin}" in command, (pin, command[:40])
        for flag in ("--metadata metadata.yml", "--plugins-dir plugins", "--static docs:docs", "--version-note"):
            assert flag in command, (flag, command[:40])


async def test_limited_query_pages_link_the_full_list_and_the_links_resolve(ds):
    """A canned query that shows its first rows only names the full list's stream as a link that answers."""
    linked = 0
    for name, query in QUERIES.items():
        paths = re.findall(r'<a href="(/civcas/[^"]+)">', query.get("description_html", ""))
        page = (await ds.client.get(f"/{DB}/{name}")).text
        for path in paths:
            assert f'href="{path}"' in page, (name, path)
            response = await ds.client.get(path.replace("&amp;", "&").replace("_stream=on", "_size=1"))
            assert response.status_code == 200, (name, path)
            linked += 1
    assert linked >= 8, "the limited queries no longer link their full lists"


async def test_render_markdown_keeps_its_template_helpers_but_no_render_cell_hook(ds):
    # plugins/civcas_markdown.py: datasette-render-markdown's render_cell read its configuration for each of ~2,000
    # cells of an incidents page (docs/performance.md); the dashboards still use its template function and tag.
    from datasette.plugins import pm

    cell_hooks = {impl.plugin_name for impl in pm.hook.render_cell.get_hookimpls()}
    assert not any("render_markdown" in name for name in cell_hooks), cell_hooks
    helpers = {impl.plugin_name for impl in pm.hook.extra_template_vars.get_hookimpls()}
    assert any("render_markdown" in name for name in helpers), helpers
    response = await ds.client.get(f"/-/dashboards/{DB}", follow_redirects=True)
    assert response.status_code == 200
    assert "What the belligerents admit" in response.text  # its description, rendered from Markdown


async def test_the_server_freezes_what_start_up_made_and_collects_less_often(ds):
    # plugins/civcas_gc.py: full collections walking every object of the process were the incidents pages'
    # slowest requests at 1,000,000 incidents (docs/performance.md); the `ds` fixture has run the start-up hooks.
    import gc

    plugin = registered_plugin("civcas_gc")
    assert gc.get_threshold() == plugin.THRESHOLDS and plugin.THRESHOLDS[0] > 700
    assert gc.get_freeze_count() > 10_000  # Datasette, Jinja and the plugins, at least


async def test_table_permissions_are_worked_out_once_and_still_enforced(ds, built_db):
    """plugins/civcas_permissions.py keeps each table's `allow` blocks (Datasette deep-copies the whole metadata to
    find them, ~4 ms a request); a table with an `allow` block is still closed to anyone else."""
    import copy

    from datasette.app import Datasette

    from conftest import make_datasette

    assert hasattr(ds._table_permission_allows, "cache_info")
    for table in await ds.get_database(DB).table_names():
        assert ds._table_permission_allows(DB, table) == Datasette._table_permission_allows(ds, DB, table) == []
    closed = make_datasette(built_db)
    metadata = copy.deepcopy(closed._metadata_local)
    metadata["databases"][DB]["tables"]["sources"]["allow"] = {"id": "curator"}
    closed._metadata_local = metadata
    for _ in range(2):  # the second answer comes from the cache
        assert (await closed.client.get(f"/{DB}/sources")).status_code == 403
        assert (await closed.client.get(f"/{DB}/sources.json")).status_code == 403
    assert closed._table_permission_allows.cache_info().hits > 0
    cookies = {"ds_actor": closed.sign({"a": {"id": "curator"}}, "actor")}
    assert (await closed.client.get(f"/{DB}/sources.json", cookies=cookies)).status_code == 200
    assert (await closed.client.get(f"/{DB}/incidents.json")).status_code == 200


async def test_start_up_takes_the_counts_and_hash_datasette_inspect_gives(built_db):
    """plugins/civcas_inspect.py: the server counts every table and hashes the file before its first request, as
    `datasette inspect` did for scripts/serve.sh, with the same numbers; pages then read the counts, not the table."""
    from datasette.cli import inspect_  # what `datasette inspect` writes to its file

    from conftest import make_datasette

    expected = (await inspect_([str(built_db)], []))[DB]
    started = make_datasette(built_db)
    await started.invoke_startup()
    db = started.get_database(DB)
    assert db.cached_hash == expected["hash"]
    assert db._cached_table_counts == {table: t["count"] for table, t in expected["tables"].items()}
    counted = []
    db.execute = lambda sql, *a, **k: counted.append(sql)  # any query now would be a recount
    assert await db.table_counts() == db._cached_table_counts and counted == []


@pytest.mark.parametrize("path", ["/civcas/incidents", "/civcas/incidents?country=SY&_sort_desc=date_start",
                                  "/civcas/incidents?_search=raqqa", "/civcas/incidents?_size=5&_next=5",
                                  "/civcas/incidents?_col=title&_col=date_start", "/civcas/incidents?_nocol=summary",
                                  "/civcas/incidents?_nocol=grading",
                                  "/civcas/incidents?incident_id=none", "/civcas/figures"])
async def test_the_incidents_list_renders_only_the_cells_it_shows_and_the_same_page(ds, built_db, path):
    """plugins/civcas_pages.py: an incidents page renders the cells of the columns the list shows (a third of the
    page's time went on the others), and every page is what Datasette's own rendering gives."""
    from datasette.views import table as table_view

    trimmed = table_view.display_columns_and_rows
    assert trimmed.civcas_list_cells_only

    def page(html: str) -> str:
        return re.sub(r"Queries took [\d.]+ms", "", html)

    ours = page((await ds.client.get(path)).text)
    table_view.display_columns_and_rows = trimmed.datasettes_own
    try:
        own = page((await ds.client.get(path)).text)
    finally:
        table_view.display_columns_and_rows = trimmed
    assert ours == own
    conn = connect(built_db)
    cursor = conn.execute("select * from incidents limit 3")
    description, rows = cursor.description, cursor.fetchall()
    conn.close()
    columns, cells = await trimmed(ds, DB, "incidents", description, rows, link_column=True)
    assert [c["name"] for c in columns] == [d[0] for d in description]
    plugin = registered_plugin("civcas_pages")
    assert {cell["column"] for cell in cells[0].cells} <= {*plugin.LIST_COLUMNS, *plugin.LIST_EXTRA} and len(cells) == 3
