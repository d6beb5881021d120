"""No URL fails: generated requests against the real server (scripts/serve.sh, production settings).

Hypothesis builds URLs over every table, view, row and canned query, with Datasette's own parameters given
unknown, malformed, huge, negative, long and non-UTF-8 values, FTS syntax errors, `_where` fragments, filters
on real and unknown columns, and path traversal under /docs and /-/static. Every answer must be below 500,
carry no traceback, come back within the SQL time limit (plus a margin for the machine), and never leak a file
from outside the site; the server must still answer afterwards.

`make test` runs a bounded number of examples; `make test-long` (HYPOTHESIS_PROFILE=long) many more.
"""
from __future__ import annotations

import http.client
import os
import sqlite3
import time
import urllib.error
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import ROOT, http_get, production_settings

settings.register_profile("fuzz-default", max_examples=int(os.environ.get("CIVCAS_FUZZ_EXAMPLES", "70")),
                          deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz-long", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
PROFILE = "fuzz-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "fuzz-default"

TIME_LIMIT_S = production_settings()["sql_time_limit_ms"] / 1000
MARGIN_S = 8  # facets, counts and rendering on a shared 2-core machine; a runaway query would take far longer

TEXTS = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "-99999999999999999999", "99999999999999999999", "1e308", "NaN", "max",
                     "1.5", "abc", "'", '"', "\\", "%", "%%", "*", "?", "\x00", "null", "undefined", "[]", "{}",
                     "' or 1=1 --", '" OR ""="', "; drop table incidents", "<script>alert(1)</script>",
                     "\u202e", "\ud7ff", "الهيشة", "x" * 3000, "a" * 100000]),
    st.text(max_size=40),
    st.integers(min_value=-10 ** 20, max_value=10 ** 20).map(str),
)
FTS = st.sampled_from(['"', '""', "AND", "OR NOT", "NEAR(", "a NEAR/ b", "*", "heisha*", "^x", "col:x", "(", ")",
                       "title:", "{title summary}:raqqa", "-x", "+", "NOT NOT", "a AND (b OR", "\u0000", "الهيشة"])
WHERE = st.sampled_from(["1=1", "1", "", "incident_id = 'x'", "zeroblob(2000000)", "length(zeroblob(2000000)) > 0",
                         "1; drop table incidents", "nosuch = 1", "(", "'", "randomblob(-1)", "1 union select 1",
                         "rowid > 0 order by random()", "exists (select 1 from figures a, figures b, figures c)",
                         "title like '%' || char(0) || '%'", "load_extension('x')"])
BYTES = st.binary(min_size=1, max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b))  # may be non-UTF-8


@pytest.fixture(scope="module")
def surface(built_db):
    """Tables, views, their columns, some row ids, and the canned queries with their parameters."""
    from conftest import metadata_yml

    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    names = [r[0] for r in conn.execute("select name from sqlite_master where type in ('table', 'view') "
                                        "and name not like '%_fts%' and name not like 'sqlite_%'")]
    columns = {n: [r[1] for r in conn.execute(f'pragma table_info("{n}")')] for n in names}
    rows = {}
    for n in names:
        pk = [r[1] for r in conn.execute(f'pragma table_info("{n}")') if r[5]]
        if pk:
            rows[n] = [r[0] for r in conn.execute(f'select "{pk[0]}" from "{n}" limit 3')]
    conn.close()
    metadata = metadata_yml()
    queries = list(metadata["databases"]["civcas"]["queries"])
    return {"tables": names, "columns": columns, "rows": rows, "queries": queries}


@st.composite
def request_url(draw, surface):
    kind = draw(st.sampled_from(["table", "table", "table", "row", "query", "query", "sql", "static", "home", "site"]))
    params: list[tuple[str, str]] = []
    ext = draw(st.sampled_from(["", "", ".json", ".csv"]))
    if kind == "home":
        path = draw(st.sampled_from(["/", "/civcas", "/-/versions", "/-/metadata", "/-/plugins", "/-/settings",
                                     "/robots.txt", "/-/databases", "/civcas.db"]))
        ext = ""
    elif kind == "site":  # the pages and formats civcas adds: record JSON, docs, charts, feed, GeoJSON
        incident = draw(st.one_of(st.sampled_from(surface["rows"].get("incidents") or ["x"]), TEXTS.map(quote)))
        path = draw(st.sampled_from([
            f"/civcas/incidents/{incident}/record.json", f"/docs/{draw(st.text(max_size=20)).replace('/', '')}",
            "/-/dashboards/civcas", "/-/dashboards/civcas/admitted-vs-reported/embed",
            "/-/dashboards/civcas/deaths-by-month", "/civcas/feed.atom", "/civcas/incidents_geojson.geojson",
            "/civcas/incidents.geojson", "/civcas/figures.geojson", "/sitemap.xml", "/civcas/places.csv"]))
        for name in draw(st.lists(st.sampled_from(["perpetrator", "_bom", "_size", "_nl", "_sort", "q", "_next"]),
                                  max_size=3)):
            params.append((name, draw(TEXTS)))
        ext = ""
    elif kind == "static":
        path = draw(st.sampled_from([
            "/docs/methodology.md", "/docs/../README.md", "/docs/%2e%2e/%2e%2e/etc/passwd", "/docs/..%2f..%2fetc%2fpasswd",
            "/docs/....//....//etc/passwd", "/-/static/../../../../etc/passwd", "/-/static/..%2f..%2f..%2fetc%2fpasswd",
            "/-/static/%2e%2e%2f%2e%2e%2fsetup.py", "/-/static-plugins/datasette_cluster_map/../../../../etc/passwd",
            "/docs/%00", "/docs/" + "a" * 5000, "/-/static/app.css%00.js"]))
        ext = ""
    elif kind == "row":
        table = draw(st.sampled_from(sorted(surface["rows"])))
        # real keys quoted too: some summary tables' keys have spaces ("UN statement")
        key = draw(st.one_of(st.sampled_from(surface["rows"][table] or ["x"]).map(lambda k: quote(str(k), safe="")),
                             TEXTS.map(quote), BYTES))
        path = f"/civcas/{table}/{key}"
    elif kind == "sql":
        path = "/civcas"
        params.append(("sql", draw(st.one_of(WHERE.map(lambda w: f"select * from incidents where {w}"),
                                             st.sampled_from(["select 1", "select * from figures", "pragma x", "",
                                                              "select :a, :b", "with recursive r(i) as (select 1 "
                                                              "union all select i + 1 from r) select count(*) from r"]),
                                             TEXTS))))
        for name in draw(st.lists(st.sampled_from(["a", "b", "_shape", "_json", "_size"]), max_size=3)):
            params.append((name, draw(TEXTS)))
    elif kind == "query":
        name = draw(st.sampled_from(surface["queries"]))
        path = f"/civcas/{name}"
        for p in draw(st.lists(st.sampled_from(["incident", "perpetrator", "belligerent", "from", "to", "latitude",
                                                 "longitude", "km", "source", "type", "q", "kind", "_shape", "_size",
                                                 "_json", "_hide_sql"]), max_size=4)):
            params.append((p, draw(st.one_of(TEXTS, FTS))))
    else:
        table = draw(st.sampled_from(surface["tables"]))
        path = f"/civcas/{table}"
        cols = surface["columns"][table]
        anycol = st.one_of(st.sampled_from(cols), TEXTS)
        for _ in range(draw(st.integers(0, 5))):
            which = draw(st.sampled_from(["_sort", "_sort_desc", "_size", "_next", "_facet", "_facet_array",
                                          "_search", "_where", "filter", "_shape", "_col", "_nocol", "_labels",
                                          "_search_col", "_through", "_nofacet", "_nocount", "_stream", "_trace"]))
            if which in ("_sort", "_sort_desc", "_facet", "_facet_array", "_col", "_nocol"):
                params.append((which, draw(anycol)))
            elif which == "_search":
                params.append((which, draw(st.one_of(FTS, TEXTS))))
            elif which == "_search_col":
                params.append((f"_search_{draw(anycol)}", draw(FTS)))
            elif which == "_where":
                params.append((which, draw(WHERE)))
            elif which == "filter":
                op = draw(st.sampled_from(["exact", "not", "gt", "gte", "lt", "lte", "like", "contains", "in",
                                           "notin", "startswith", "endswith", "glob", "isnull", "notnull", "date",
                                           "arraycontains", "nosuchop", ""]))
                params.append((f"{draw(anycol)}__{op}" if op else draw(anycol), draw(TEXTS)))
            else:
                params.append((which, draw(TEXTS)))
    query = "&".join(f"{quote(k, safe='')}={draw(st.one_of(st.just(quote(v, safe='')), BYTES))}"
                     for k, v in params)
    if kind == "site":
        path = quote(path, safe="/-_.~")
    return path + (ext if kind in ("table", "row", "query", "sql") else "") + ("?" + query if query else "")


# uvicorn (h11) refuses a request line longer than this by closing the connection: a clean refusal.
LONGEST_REQUEST_LINE = 16_000


def fetch(base: str, url: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    try:
        status, _, body = http_get(base + url, timeout=60, limit=2_000_000, headers={"Accept-Encoding": "identity"})
    except (ConnectionError, http.client.HTTPException, urllib.error.URLError):
        if len(url) <= LONGEST_REQUEST_LINE:
            raise
        status, body = 431, b""
    return status, body, time.monotonic() - started


def test_no_url_fails(server, surface):
    @settings(settings.get_profile(PROFILE))
    @given(url=request_url(surface))
    def check(url):
        status, body, elapsed = fetch(server, url)
        assert status < 500, (url, status, body[:500])
        assert b"Traceback" not in body, url
        assert b"root:x:0:0" not in body, url
        assert str(ROOT).encode() not in body, (url, "the server's own path leaked")
        assert elapsed < TIME_LIMIT_S + MARGIN_S, (url, elapsed)

    check()
    status, _, _ = fetch(server, "/-/versions.json")
    assert status == 200, "the server stopped answering"


# Every URL the fuzzer found answering 500 on Datasette 0.65.5, kept as regressions (plugins/civcas_errors.py).
FOUND = [
    "/docs/" + "a" * 5000,                                        # OSError: File name too long (with the server's path)
    "/civcas/countries?_sort=%20",                                # DatasetteError "Cannot sort table by" with status 500
    "/civcas/countries?_sort=country_code&_sort_desc=name",        # same, two sorts
    "/civcas/countries?_through=",                                # JSONDecodeError
    "/civcas/countries?_facet=%00",                               # ProgrammingError: null character
    "/civcas/incident_claims?_sort=incident_id&_next=9223372036854775808",  # IntegrityError: datatype mismatch
    "/civcas/figures.csv?_stream=1&_where=length(zeroblob(2000000))>0",     # DataError in the CSV stream
    "/civcas/actors/%3Cscript%3E/x",                              # a 404 outside an except block, with rich installed
]


@pytest.mark.parametrize("url", FOUND)
def test_urls_that_once_failed(server, url):
    status, body, _ = fetch(server, url)
    assert 400 <= status < 500, (url, status, body[:300])
    assert str(ROOT).encode() not in body and b"Traceback" not in body
