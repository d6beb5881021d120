"""No script from data, and the headers that keep it so, on the production command (scripts/serve.sh).

A copy of raw/ is seeded with markup a hostile or careless curator could type (script tags, event-handler
attributes, markup that breaks out of attributes) in every kind of text the site shows: incident titles and
summaries, place names in both scripts, quotes, source titles and publishers, actor names, and inside a URL.
That database is served exactly as in production and every page that shows those values is opened in headless
Chromium: no dialog may open, no injected element may appear, no injected script may run.
"""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import RAW, ROOT, http_get, local_page, serving
from rawfiles import RawFile

pytestmark = pytest.mark.browser

MARK = "civcas-xss"
PAYLOADS = [
    f'<script>window.__civcas_xss = 1; alert("{MARK}")</script>',
    f'<img id="{MARK}" src="x" onerror="window.__civcas_xss = 1; alert(1)">',
    f'"><svg id="{MARK}-svg" onload="window.__civcas_xss = 1">',
    f"'><a id=\"{MARK}-a\" href=\"javascript:window.__civcas_xss=1\">click</a>",
]
INCIDENT = "sy-2016-11-08-al-heisha"


def edit_csv(path: Path, key: str, changes: dict[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    hit = [r for r in rows[1:] if r[0] == key]
    assert len(hit) == 1, (path.name, key)
    for column, value in changes.items():
        hit[0][header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def hostile(text: str, i: int) -> str:
    return f"{text} {PAYLOADS[i % len(PAYLOADS)]}"


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    """The real raw/ with markup in every displayed text column, built and served as in production."""
    work = tmp_path_factory.mktemp("hostile")
    raw = work / "raw"
    shutil.copytree(RAW, raw)
    edit_csv(raw / "incidents.csv", INCIDENT, {"title": hostile("Al-Heisha", 0), "summary": hostile("Summary", 1),
                                               "grading_reason": hostile("Reason", 2), "date_notes": hostile("Dates", 3)})
    edit_csv(raw / "places.csv", "al-heisha", {"name": hostile("al-Heisha", 1), "name_local": hostile("الهيشة", 2),
                                              "name_variants": hostile("Heisha", 3)})
    edit_csv(raw / "figures.csv", "bbc-heisha-sohr-killed", {"quote": hostile("Quote", 0), "notes": hostile("Note", 1)})
    edit_csv(raw / "statements.csv", "seed-dorrian-confirms-strikes", {"quote": hostile("Said", 2)})
    edit_csv(raw / "sources.csv", "bbc-2016-11-09-coalition-strike-kills-20",
             {"title": hostile("BBC", 3), "publisher": hostile("BBC News", 0),
              # no whitespace, so the build accepts it as an http(s) URL: it must still render as an inert link
              "url": 'https://www.bbc.com/news/x?a="><svg/id="civcas-xss-url"/onload=window.__civcas_xss=1>'})
    edit_csv(raw / "actors.csv", "sohr", {"name": hostile("SOHR", 1)})
    # ...and a change to that incident dated after every other, so that the feed (the newest 100) lists it.
    RawFile(raw, "changes").append({"change_id": "hostile-retitle", "changed_on": "9999-12-31",
                                    "table_name": "incidents", "row_id": INCIDENT, "action": "changed",
                                    "summary": hostile("Retitled", 2)})
    db = work / "civcas.db"
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--raw", str(raw), "--db", str(db)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with serving(db, work) as (base, _pid):
        yield base


def pages_to_open(base: str) -> list[str]:
    db = f"{base}/civcas"
    return [
        f"{base}/",
        db,
        f"{db}/incidents",
        f"{db}/incidents?incident_id={INCIDENT}",
        f"{db}/incidents/{INCIDENT}",
        f"{db}/places/al-heisha",
        f"{db}/figures?incident_id={INCIDENT}",
        f"{db}/figures/bbc-heisha-sohr-killed",
        f"{db}/statements?incident_id={INCIDENT}",
        f"{db}/sources/bbc-2016-11-09-coalition-strike-kills-20",
        f"{db}/actors/sohr",
        f"{db}/incident_claims?incident_id={INCIDENT}",
        f"{db}/claims_for_incident?incident={INCIDENT}",
        f"{db}/search_everything?q=Heisha",
        f"{db}/headline_numbers",
        f"{db}/belligerent_statements",
        f"{db}/disagreements",
        f"{db}/incidents_in_date_range?from=2016-11-01&to=2016-11-30",
        f"{db}?sql=" + quote(f"select title, summary from incidents where incident_id = '{INCIDENT}'"),
        f"{base}/-/dashboards/civcas",  # chart legends show actor names
        f"{db}/feed",
    ]


def injected(page) -> list[str]:
    found = page.evaluate("""(mark) => {
        const hits = Array.from(document.querySelectorAll('[id^="' + mark + '"]')).map((el) => el.outerHTML);
        if (window.__civcas_xss) hits.push('window.__civcas_xss was set');
        return hits;
    }""", MARK)
    return found


def test_markup_in_the_data_stays_text_on_every_page(browser, hostile_site):
    with local_page(browser) as page:
        for url in pages_to_open(hostile_site):
            response = page.goto(url)
            assert response.status == 200, url
            page.wait_for_timeout(150)
            assert injected(page) == [], url
            assert page.dialogs == [], url
            # ...and the payload is shown as the text it is
            content = page.content()
            assert "<script>" in content or "&lt;script&gt;" in content or "civcas-xss" in content, url


def test_markup_stays_text_in_the_feed(hostile_site):
    import feedparser

    with urllib.request.urlopen(f"{hostile_site}/civcas/feed.atom", timeout=30) as r:
        feed = feedparser.parse(r.read())
    assert not feed.bozo
    heisha = [e for e in feed.entries if e.title.startswith("Al-Heisha")]
    assert heisha and "<script>" in heisha[0].title  # the title is text: the markup survives as characters


def test_markup_stays_text_in_the_map_popup(browser, hostile_site):
    with local_page(browser) as page:
        page.goto(f"{hostile_site}/civcas/incidents?incident_id={INCIDENT}")
        page.wait_for_selector(".leaflet-marker-icon")
        page.locator(".leaflet-marker-icon").first.click()
        page.wait_for_selector(".leaflet-popup-content")
        page.wait_for_selector(".civcas-popup-loading", state="detached")  # read when opened (plugins/civcas_map.py)
        popup = page.locator(".leaflet-popup-content")
        assert "Al-Heisha" in popup.inner_text()
        assert "<script>" in popup.inner_text() or "alert" in popup.inner_text()
        assert injected(page) == [] and page.dialogs == []


def test_javascript_addresses_are_rejected_by_the_build(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    edit_csv(raw / "sources.csv", "bbc-2016-11-09-coalition-strike-kills-20",
             {"url": "javascript:alert(1)", "archive_url": "data:text/html,<script>alert(1)</script>"})
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--raw", str(raw), "--db", str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "url:" in result.stderr and "archive_url:" in result.stderr


# --- headers on the production command ---------------------------------------------------------


def headers_of(url: str):
    status, headers, _ = http_get(url)
    return status, headers


@pytest.mark.parametrize("path", ["/", "/civcas", "/civcas/incidents", "/civcas/incidents.json", "/civcas/incidents.csv",
                                  f"/civcas/incidents/{INCIDENT}", "/civcas/headline_numbers", "/civcas.db",
                                  "/-/static/app.css", "/docs/methodology.md", "/robots.txt", "/no-such-page",
                                  "/civcas.json?sql=select+zeroblob(1000000000)"])
def test_security_headers_on_every_response(server, path):
    status, headers = headers_of(server + path)
    assert status in (200, 400, 404), (path, status)
    csp = headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "https://tile.openstreetmap.org" in directives["img-src"]
    assert "*" not in directives["script-src"] and "http:" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]  # only the chart pages evaluate strings
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_static_files_are_cached_and_pages_are_not(server):
    """plugins/civcas_headers.py: a browser keeps Datasette's hashed files a year and the other static files and
    the documentation an hour; data pages and JSON keep Datasette's own (default_cache_ttl), errors none."""
    home = http_get(server + "/")[2].decode()
    hashed = re.search(r'href="(/-/static/app\.css\?[0-9a-f]+)"', home)
    assert hashed, "the home page links Datasette's style sheet by its hash"
    assert headers_of(server + hashed.group(1))[1]["cache-control"] == "public, max-age=31536000, immutable"
    for path in ["/-/static/app.css", "/-/static-plugins/datasette-leaflet/leaflet-v1.7.1.js", "/docs/methodology.md"]:
        status, headers = headers_of(server + path)
        assert status == 200 and headers["cache-control"] == "public, max-age=3600", path
    for path in ["/", "/civcas/incidents", "/civcas/incidents.json", f"/civcas/incidents/{INCIDENT}",
                 "/-/static/no-such-file.css"]:
        caching = headers_of(server + path)[1].get("cache-control", "")
        assert "immutable" not in caching and "3600" not in caching, (path, caching)


def test_the_policy_lets_the_site_work(browser, server, built_db):
    """Every page the site links from its home page loads under the policy with no violation; the map draws."""
    with local_page(browser) as page:
        for path in ["/", "/civcas", "/civcas/incidents", f"/civcas/incidents/{INCIDENT}",
                     "/civcas/incidents_in_date_range", "/civcas/admitted_vs_reported", "/civcas/search_everything"]:
            page.goto(server + path)
            page.wait_for_timeout(200)
        page.goto(server + "/civcas/incidents")
        page.wait_for_selector(".leaflet-marker-icon")
        assert page.csp_violations == [], page.csp_violations
        assert page.js_errors == [], page.js_errors


def test_the_detector_sees_a_real_injection(browser, server):
    """The checks above can fail: the same payloads, inserted as markup instead of text, are caught."""
    with local_page(browser) as page:
        page.goto(server + "/-/versions")
        page.evaluate("(html) => { document.body.insertAdjacentHTML('beforeend', html); }", "".join(PAYLOADS))
        page.wait_for_timeout(300)
        assert injected(page), "injected elements were not detected"
        assert page.dialogs or page.evaluate("() => window.__civcas_xss === 1")
