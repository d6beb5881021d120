"""The reading layer in a real browser against scripts/serve.sh: incident pages, home page, charts, query pickers.

For every incident in raw/, its page shows each current claim's claimant and number and links each source (read
from the page the server sends; one page of each kind is also rendered in Chromium).
Charts must draw their marks with no console error; the home page's map must show every geolocated incident.
"""
from __future__ import annotations

import os
from html.parser import HTMLParser

import pytest

from conftest import ROOT, http_get, local_page, sql_rows as rows

pytestmark = pytest.mark.browser
DB = "civcas"
SCREENSHOTS = ROOT / "docs"


def number_shown(f) -> str:
    value = f["value_min"] if f["value_min"] is not None else f["value_max"]
    return f"{value:,}"


def console_errors(page) -> list[str]:
    # Map tiles cannot load offline (requests to other hosts are aborted): those are not errors of the site.
    return [e for e in page.console_errors if "ERR_FAILED" not in e and "net::" not in e]


@pytest.fixture
def page(browser, server):
    with local_page(browser) as p:
        p.console_errors = []
        p.on("console", lambda m: p.console_errors.append(m.text) if m.type == "error" else None)
        yield p


# What the browser shows of an incident page, read in one round trip (innerText is what Playwright's
# inner_text() returns: the rendered text).
PAGE_JS = """(ids) => ({
  title: document.title,
  h1: (document.querySelector('h1') || {innerText: ''}).innerText,
  figures: Object.fromEntries(ids.map((id) => {
    const rows = document.querySelectorAll('#figure-' + CSS.escape(id));
    return [id, rows.length === 1 ? rows[0].innerText : rows.length];
  })),
  hrefs: Array.from(document.querySelectorAll('a[href]'), (a) => a.getAttribute('href')),
  citation: (document.querySelector('#citation') || {innerText: ''}).innerText,
})"""


class PageText(HTMLParser):
    """The same reading of a page from its HTML as PAGE_JS makes in the browser: the title, the first h1, every
    link's href and the text of the elements with the given ids (with the number of elements having each id)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, html: str, ids):
        super().__init__(convert_charrefs=True)
        self.wanted, self.count, self.texts = set(ids), {}, {}
        self.open: list[list] = []  # [id, tag, depth of the same tag inside] of each wanted element being read
        self.title, self.h1, self.hrefs, self.in_title, self.h1_depth = "", None, [], False, 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href") is not None:
            self.hrefs.append(attrs["href"])
        if tag in self.VOID:
            return
        self.in_title = self.in_title or tag == "title"
        if tag == "h1" and self.h1 is None:
            self.h1, self.h1_depth = "", 1
        for element in self.open:
            element[2] += element[1] == tag
        if attrs.get("id") in self.wanted:
            self.count[attrs["id"]] = self.count.get(attrs["id"], 0) + 1
            self.open.append([attrs["id"], tag, 0])

    def handle_endtag(self, tag):
        self.in_title = self.in_title and tag != "title"
        if tag == "h1" and self.h1_depth:
            self.h1_depth = 0
        for element in list(self.open):
            if element[1] == tag:
                if element[2]:
                    element[2] -= 1
                else:
                    self.open.remove(element)

    def handle_data(self, data):
        self.title += data if self.in_title else ""
        if self.h1_depth:
            self.h1 += data
        for element in self.open:
            self.texts[element[0]] = self.texts.get(element[0], "") + data

    def text(self, element_id: str) -> str:
        return " ".join(self.texts.get(element_id, "").split())


def incident_claims(built_db):
    """Each incident's current figures (with the claimant's name) and the addresses of its sources."""
    figures, sources = {}, {}
    for f in rows(built_db, """select f.incident_id, f.figure_id, f.value_min, f.value_max, a.name from figures f
                               join actors a on a.actor_id = f.claimant where f.superseded_by is null"""):
        figures.setdefault(f["incident_id"], []).append(f)
    for s in rows(built_db, """select distinct x.incident_id, s.url from sources s join (
                                   select incident_id, source_id from figures
                                   union select incident_id, source_id from statements) x on x.source_id = s.source_id
                               where s.url is not null"""):
        sources.setdefault(s["incident_id"], []).append(s["url"])
    return figures, sources


def assert_shows_its_claims(incident, shown, figures, sources):
    iid = incident["incident_id"]
    assert shown["title"].startswith(incident["title"][:40]), iid
    assert " ".join(shown["h1"].split()) == incident["title"], iid
    for f in figures.get(iid, []):
        text = shown["figures"][f["figure_id"]]
        assert isinstance(text, str), (iid, f["figure_id"], f"{text} elements")  # exactly one row per claim
        assert f["name"] in text and number_shown(f) in text, (iid, f["figure_id"], text[:200])
    hrefs = set(shown["hrefs"])
    for url in sources.get(iid, []):
        assert url in hrefs, (iid, url)
    citation = shown["citation"]
    assert iid in citation and "data version" in citation and f"/{DB}/incidents/{iid}" in citation, iid


def test_every_incident_page_shows_every_current_claim_and_links_every_source(server, built_db):
    """Every incident's page, as the server sends it (the browser test below renders one page of each kind: every
    page in Chromium took ~0.2 s a page, and the list grows with every incident curated)."""
    incidents = rows(built_db, "select incident_id, title from incidents order by incident_id")
    assert len(incidents) >= 40
    figures, sources = incident_claims(built_db)
    for incident in incidents:
        iid = incident["incident_id"]
        status, _, body = http_get(f"{server}/{DB}/incidents/{iid}")
        assert status == 200, iid
        ids = [f"figure-{f['figure_id']}" for f in figures.get(iid, [])] + ["citation"]
        page = PageText(body.decode("utf-8"), ids)
        shown = {"title": page.title, "h1": page.h1 or "", "hrefs": page.hrefs, "citation": page.text("citation"),
                 "figures": {i[len("figure-"):]: page.text(i) if page.count.get(i) == 1 else page.count.get(i, 0)
                             for i in ids[:-1]}}
        assert_shows_its_claims(incident, shown, figures, sources)


def test_incident_pages_of_every_kind_show_their_claims_in_the_browser(page, server, built_db):
    """One incident page of each kind the page is drawn differently for (each place precision, with and without
    coordinates, with and without a local-script name), the one with the most claims and one with a superseded
    claim: rendered by Chromium, with their small maps drawn where they have coordinates, and no script error."""
    kinds = rows(built_db, """
        select max(incident_id) as incident_id from incidents group by geo_precision, latitude is null, place_local is null
        union select incident_id from (select incident_id from figures where incident_id is not null
                                       group by incident_id order by count(*) desc limit 1)
        union select min(incident_id) from figures where superseded_by is not null and incident_id is not null""")
    assert len(kinds) >= 8
    titles = {r["incident_id"]: r for r in rows(built_db, "select incident_id, title, latitude from incidents")}
    figures, sources = incident_claims(built_db)
    for kind in kinds:
        incident = titles[kind["incident_id"]]
        iid = incident["incident_id"]
        response = page.goto(f"{server}/{DB}/incidents/{iid}")
        assert response.status == 200, iid
        if incident["latitude"] is not None:
            page.wait_for_selector("#civcas-small-map[data-civcas-map=ready]")
        shown = page.evaluate(PAGE_JS, [f["figure_id"] for f in figures.get(iid, [])])
        assert_shows_its_claims(incident, shown, figures, sources)
        assert page.dialogs == [] and page.js_errors == [] and console_errors(page) == [], iid


def test_superseded_claims_are_greyed_with_what_replaced_them(page, server):
    page.goto(f"{server}/{DB}/incidents/sy-2016-11-08-al-heisha")
    first_toll = page.locator("#figure-afp-ar-heisha-sohr-first-toll")
    assert "superseded" in first_toll.get_attribute("class")
    assert first_toll.locator('a[href="#figure-afp-heisha-sohr-killed"]').count() == 1
    assert page.locator("#correction-heisha-toll-contested").count() == 1
    if os.environ.get("CIVCAS_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOTS / "incident.png"))


def test_incident_page_has_its_small_map(page, server):
    page.goto(f"{server}/{DB}/incidents/sy-2016-11-08-al-heisha")
    page.wait_for_selector("#civcas-small-map[data-civcas-map=ready]")
    assert page.locator("#civcas-small-map path.leaflet-interactive").count() == 1


def test_home_page_leads_with_numbers_map_and_chart(page, server, built_db):
    page.goto(f"{server}/")
    numbers = page.locator(".civcas-numbers").inner_text()
    count = rows(built_db, "select count(*) as n from incidents")[0]["n"]
    assert f"{count}\nincidents" in numbers or f"{count} incidents" in numbers.replace("\n", " ")
    assert "admits killing" in numbers
    geolocated = rows(built_db, "select count(*) as n from incidents where latitude is not null")[0]["n"]
    page.wait_for_selector(f"#civcas-home-map[data-civcas-points='{geolocated}']")
    assert page.locator("#civcas-home-map path.civcas-point").count() == geolocated
    frame = page.frame_locator("iframe.civcas-chart")
    frame.locator(".vega-embed svg g.mark-line path").first.wait_for(timeout=15_000)
    assert frame.locator(".vega-embed svg g.mark-line path").count() >= 2
    assert console_errors(page) == [] and page.js_errors == []
    if os.environ.get("CIVCAS_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOTS / "home.png"))


def test_charts_draw_their_marks(page, server):
    for perpetrator in ("us-led-coalition", "russian-armed-forces"):
        page.goto(f"{server}/-/dashboards/civcas?perpetrator={perpetrator}")
        page.wait_for_selector(".vega-embed svg g.mark-line path", timeout=15_000)
        page.wait_for_selector(".vega-embed svg g.mark-rect path", timeout=15_000)
        assert page.locator(".vega-embed svg g.mark-line path").count() >= 2
        assert page.locator(".vega-embed svg g.mark-rect path").count() >= 10
        assert console_errors(page) == [], console_errors(page)
        assert page.js_errors == [] and page.csp_violations == []


def test_query_pages_have_a_title_a_footer_and_pickers(page, server, built_db):
    page.goto(f"{server}/{DB}/claims_for_incident")
    assert page.title().startswith("Every claim for one incident")
    assert "CC BY 4.0" in page.locator("footer").inner_text()
    picker = page.locator("select[name=incident]")
    assert picker.count() == 1
    options = picker.locator("option").count()
    assert options == rows(built_db, "select count(*) as n from incidents")[0]["n"] + 1
    picker.select_option("sy-2016-11-08-al-heisha")
    page.locator("form.sql input[type=submit]").click()
    page.wait_for_load_state()
    assert "incident=sy-2016-11-08-al-heisha" in page.url
    assert page.locator('td.col-incident_id a[href="/civcas/incidents/sy-2016-11-08-al-heisha"]').count() > 0
    # a free-text fallback still works without JavaScript: part of the title finds the incident
    page.goto(f"{server}/{DB}/claims_for_incident.json?incident=heisha&_shape=array")
    assert "sy-2016-11-08-al-heisha" in page.content()


def test_docs_are_pages_in_the_site(page, server):
    response = page.goto(f"{server}/docs/methodology")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "8–9 November" in page.content() and "الهيشة" in page.content()
    for link in page.locator("article a[href^='/docs/']").all():
        href = link.get_attribute("href").split("#")[0]
        assert page.request.get(server + href).status == 200, href
    assert page.locator("h2#which-incidents-we-record").count() == 1


def test_search_ranks_incidents_first_and_links_them(page, server):
    page.goto(f"{server}/{DB}/search_everything?q=Heisha")
    first = page.locator("table.rows-and-columns tbody tr").first
    assert "incident" in first.inner_text()
    assert first.locator('a[href="/civcas/incidents/sy-2016-11-08-al-heisha"]').count() == 1
    assert page.locator("th.col-rank").count() == 0
