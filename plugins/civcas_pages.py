"""The reading layer of the site, built on Datasette's hooks (no fork of its templates' logic).

* Incident pages: `extra_template_vars` gives templates/row-civcas-incidents.html the whole record of one
  incident (place, belligerent, every claim with its claimant and source, statements, corrections, sources,
  a citation), read from the same database.
* Every id a link: `render_cell` links id columns of queries and views (tables link their own foreign keys).
* Query parameters that pick from known values: `extra_body_script` turns the `incident`, `perpetrator`,
  `belligerent`, `source`, `kind` and `type` boxes of canned queries into select boxes.
* The home page's numbers, the citation and the data version: `extra_template_vars`.
* /docs/<page>: the Markdown documents in docs/ as HTML pages in the site's layout (UTF-8, links working);
  /robots.txt: rows and tables crawlable, query strings and exports not, with the sitemap's address.
* The incidents list renders only the cells it shows (LIST_COLUMNS, see `list_cells_only`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import markdown
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

DB = "civcas"
# The columns templates/_table-civcas-incidents.html shows of each incident (every column is in the incident's
# page, the JSON and the CSV); `country` too where the page has it.
LIST_COLUMNS = ("incident_id", "title", "date_start", "date_end", "place", "place_local", "civilians_killed_min",
                "civilians_killed_max", "belligerent", "belligerent_assessment", "grading", "claimants_count",
                "provisional")
LIST_EXTRA = ("country",)
DOCS = Path(__file__).resolve().parent.parent / "docs"
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# Columns that hold an id, and the table the id belongs to.
ID_COLUMNS = {
    "incident_id": "incidents", "figure_id": "figures", "source_id": "sources", "better_source_id": "sources",
    "statement_id": "statements", "discrepancy_id": "discrepancies", "place_id": "places", "superseded_by": "figures",
    "claimant": "actors", "speaker": "actors", "belligerent": "actors", "scope_perpetrator": "actors",
    "first_reported_by": "actors", "first_report_source_id": "sources", "geo_source_id": "sources",
    "cited_in": "sources", "parent_id": "actors", "top_id": "actors", "admitted_figure": "figures",
}
KIND_TABLES = {"incident": "incidents", "figure": "figures", "statement": "statements", "source": "sources"}
METRIC_ORDER = ["civilians_killed", "deaths_total", "children_killed", "women_killed", "civilians_injured",
                "people_injured", "children_injured", "women_injured", "combatants_killed"]
METRIC_LABELS = {
    "civilians_killed": "Civilians killed", "deaths_total": "People killed (civilian status not stated)",
    "children_killed": "Children killed", "women_killed": "Women killed", "civilians_injured": "Civilians injured",
    "people_injured": "People injured", "children_injured": "Children injured", "women_injured": "Women injured",
    "combatants_killed": "Combatants killed",
}
ASSESSMENT_LABELS = {
    "credible": "assessed the allegation as credible", "non-credible": "assessed the allegation as non-credible",
    "duplicate": "treated the allegation as a duplicate", "not yet assessed": "has not published an assessment",
    "unknown": "no assessment found by civcas",
}


def claim_text(low, high, qualifier) -> str:
    if qualifier == "about":
        return f"about {low:,}"
    if qualifier in ("at least", "more than"):
        return f"{qualifier} {low:,}"
    if qualifier == "up to":
        return f"up to {high:,}"
    if qualifier == "range":
        return f"{low:,}–{high:,}"
    return f"{low:,}" if low is not None else "—"


def range_text(low, high) -> str:
    if low is None and high is None:
        return "no figure"
    if high is None:
        return f"{low:,} or more"
    if low is None:
        return f"up to {high:,}"
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def row_link(table: str, value: str) -> Markup:
    return Markup('<a href="/{db}/{table}/{id}">{id}</a>').format(db=DB, table=table, id=value)


# --- every id a link -----------------------------------------------------------------------------------

async def table_names(datasette) -> set[str]:
    """The database's tables (not views), read once: the database is immutable."""
    cached = getattr(datasette, "_civcas_tables", None)
    if cached is None:
        cached = datasette._civcas_tables = set(await datasette.get_database(DB).table_names())
    return cached


def id_link(row, value: str, column: str) -> Markup | None:
    if column == "corrected_by":
        ids = [v.strip() for v in value.split("|")]
        if all(SLUG.fullmatch(i) for i in ids):
            return Markup(", ").join(row_link("discrepancies", i) for i in ids)
    target = ID_COLUMNS.get(column)
    if column == "id" and row is not None and "kind" in row.keys():
        target = KIND_TABLES.get(row["kind"])
    if target and SLUG.fullmatch(value):
        return row_link(target, value)
    return None


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if database != DB or not isinstance(value, str):
        return None
    known = getattr(datasette, "_civcas_tables", None)
    if table and known is not None and table in known:
        return None  # decided without a coroutine: a table page asks this for every cell (2,000 on a page)

    async def inner():
        if table and table in await table_names(datasette):
            return None  # Datasette links a table's primary and foreign keys itself, with labels
        return id_link(row, value, column)
    return inner


# --- data for templates --------------------------------------------------------------------------------

async def build_info(datasette) -> dict:
    cached = getattr(datasette, "_civcas_build_info", None)
    if cached is None:
        db = datasette.get_database(DB)
        row = (await db.execute("select * from build_info")).first()
        cached = dict(row) if row else {}
        if cached:
            cached["version"] = cached.get("data_version") or (cached.get("data_sha256") or "")[:12]
            cached["built_on"] = (cached.get("built_at") or "")[:10]
            cached["counts"] = json.loads(cached.get("row_counts") or "{}")
        datasette._civcas_build_info = cached  # the database is immutable: read it once
    return cached


def citation(info: dict, title: str, url: str, what: str) -> str:
    commit = (info.get("source_commit") or "")[:12]
    parts = [f"civcas ({info.get('built_on', '')[:4] or 'n.d.'}). {title}. {what}",
             f"civcas: civilian harm from air strikes, data version {info.get('version', 'unknown')} "
             f"(built {info.get('built_on', 'unknown')})", url]
    if info.get("source_repository") and commit:
        parts.append(f"Repository: {info['source_repository']}, commit {commit}")
    elif commit:
        parts.append(f"Built from the civcas repository at commit {commit}")
    return ". ".join(p.rstrip(".") for p in parts if p) + "."


async def incident_record(datasette, request, incident_id: str) -> dict | None:
    db = datasette.get_database(DB)
    incident = (await db.execute("select * from incidents where incident_id = ?", [incident_id])).first()
    if incident is None:
        return None
    incident = dict(incident)
    place = dict((await db.execute("select * from places where place_id = ?", [incident["place_id"]])).first())
    belligerent = dict((await db.execute("select * from actors where actor_id = ?", [incident["belligerent"]])).first())
    figures = [dict(r) for r in await db.execute("""
        select f.*, a.name as claimant_name, a.actor_type as claimant_type, a.top_id as claimant_top,
               s.title as source_title, s.publisher, s.published, s.url, s.archive_url
        from figures f join actors a on a.actor_id = f.claimant join sources s on s.source_id = f.source_id
        where f.incident_id = ?""", [incident_id])]
    order = {m: i for i, m in enumerate(METRIC_ORDER)}
    figures.sort(key=lambda f: (order.get(f["metric"], 99), f["superseded_by"] is not None,
                                -(f["value_max"] or f["value_min"] or 0)))
    for f in figures:
        f["text"] = claim_text(f["value_min"], f["value_max"], f["qualifier"])
        f["belligerent_side"] = f["claimant_top"] == belligerent["top_id"]
    statements = [dict(r) for r in await db.execute("""
        select st.*, a.name as speaker_name, a.top_id as speaker_top, s.title as source_title, s.publisher, s.url
        from statements st join actors a on a.actor_id = st.speaker join sources s on s.source_id = st.source_id
        where st.incident_id = ? order by st.said_on is null, st.said_on""", [incident_id])]
    for st in statements:
        st["belligerent_side"] = st["speaker_top"] == belligerent["top_id"]
    corrections = [dict(r) for r in await db.execute("""
        select d.*, s.publisher as reported_by, s.url as reported_url, b.publisher as better_by, b.url as better_url
        from discrepancies d join sources s on s.source_id = d.source_id join sources b on b.source_id = d.better_source_id
        where d.incident_id = ? or d.figure_id in (select figure_id from figures where incident_id = ?)
           or d.statement_id in (select statement_id from statements where incident_id = ?)
        order by d.discrepancy_id""", [incident_id] * 3)]
    sources = [dict(r) for r in await db.execute("""
        select * from sources where source_id in (
            select source_id from figures where incident_id = :id
            union select source_id from statements where incident_id = :id
            union select better_source_id from discrepancies where incident_id = :id
            union select geo_source_id from places where place_id = :place
            union select first_report_source_id from incidents where incident_id = :id)
        order by published is null, published, publisher""", {"id": incident_id, "place": incident["place_id"]})]
    info = await build_info(datasette)
    url = datasette.absolute_url(request, f"/{DB}/incidents/{incident_id}")
    metrics = {}
    for f in figures:
        metrics.setdefault(f["metric"], []).append(f)
    return {
        "incident": incident, "place": place, "belligerent": belligerent, "figures": figures, "metrics": metrics,
        "metric_labels": METRIC_LABELS, "statements": statements, "corrections": corrections, "sources": sources,
        "killed": range_text(incident["civilians_killed_min"], incident["civilians_killed_max"]),
        "injured": range_text(incident["civilians_injured_min"], incident["civilians_injured_max"]),
        "children": range_text(incident["children_killed_min"], incident["children_killed_max"]),
        "women": range_text(incident["women_killed_min"], incident["women_killed_max"]),
        "assessment": ASSESSMENT_LABELS.get(incident["belligerent_assessment"], incident["belligerent_assessment"]),
        "citation": citation(info, f"“{incident['title']}”", url, f"Incident {incident_id}"),
        "json_url": f"/{DB}/incidents/{incident_id}.json", "url": url, "info": info,
    }


async def home(datasette, request) -> dict:
    db = datasette.get_database(DB)
    info = await build_info(datasette)
    latest = {}
    for perpetrator in ("us-led-coalition", "russian-armed-forces"):
        rows = [dict(r) for r in await db.execute("""
            select f.figure_id, f.value_min, f.value_max, f.qualifier, f.as_of, f.scope_area, a.name as claimant,
                   a.top_id = (select top_id from actors where actor_id = :p) as admitted
            from figures f join actors a on a.actor_id = f.claimant
            where f.incident_id is null and f.metric = 'civilians_killed' and f.aggregate_kind = 'running total'
              and f.scope_perpetrator = :p and f.as_of is not null and f.superseded_by is null
              and f.corrected_by is null and (a.actor_type = 'monitor' or a.top_id = (select top_id from actors where actor_id = :p))
            order by f.as_of desc, f.value_min""", {"p": perpetrator})]
        admitted = next((r for r in rows if r["admitted"]), None)
        reported = next((r for r in rows if not r["admitted"]), None)
        for r in (admitted, reported):
            if r:
                r["text"] = claim_text(r["value_min"], r["value_max"], r["qualifier"])
        latest[perpetrator] = {"admitted": admitted, "reported": reported}
    deadliest = [dict(r) for r in await db.execute("""
        select incident_id, title, date_start, place, civilians_killed_min, civilians_killed_max
        from incidents where civilians_killed_max is not null
        order by civilians_killed_max desc limit 5""")]  # the index on civilians_killed_max, at any size
    for r in deadliest:
        r["killed"] = range_text(r["civilians_killed_min"], r["civilians_killed_max"])
    last_changed = (await db.execute("select max(changed_on) from changes")).single_value()
    url = datasette.absolute_url(request, "/")
    return {"info": info, "latest": latest, "deadliest": deadliest, "last_changed": last_changed,
            "citation": citation(info, "civcas: civilian harm from air strikes", url, "Dataset")}


@hookimpl
def extra_template_vars(template, database, table, view_name, request, datasette):
    async def inner():
        out = {}
        if datasette.databases.get(DB) is None:
            return out
        out["civcas_build"] = await build_info(datasette)
        if view_name == "row" and table == "incidents" and database == DB:
            from datasette.utils import tilde_decode
            out["record"] = await incident_record(datasette, request, tilde_decode(request.url_vars.get("pks", "")))
        if view_name == "index":
            out["home"] = await home(datasette, request)
        return out
    return inner


# --- the incidents list: only the cells it shows ---------------------------------------------------------------

def list_cells_only(own):
    """Datasette's `display_columns_and_rows`, rendering of an incidents list page only the cells the list shows.

    Datasette renders every cell of a table page before the template picks what to show: for an incidents page,
    50 rows of ~40 columns, each cell through the `render_cell` hook (~2,000 calls through pluggy, a third of the
    page's time). The list shows 13 columns. The header's columns stay all of them (the small-screen sort menu
    and the column labels read them); the rows' cells are those of LIST_COLUMNS (and LIST_EXTRA), each rendered
    exactly as Datasette renders it. Pages of other tables, and an incidents page whose columns (`_col`,
    `_nocol`) leave out one the list needs (it is then shown as Datasette's own table), are Datasette's own."""
    async def display_columns_and_rows(datasette, database_name, table_name, description, rows, *args, **kwargs):
        names = [d[0] for d in description]
        if database_name != DB or table_name != "incidents" or not rows or not set(LIST_COLUMNS) <= set(names):
            return await own(datasette, database_name, table_name, description, rows, *args, **kwargs)
        from datasette.utils import CustomRow

        columns, _ = await own(datasette, database_name, table_name, description, [], *args, **kwargs)
        keep = [i for i, name in enumerate(names) if name in LIST_COLUMNS or name in LIST_EXTRA]
        kept = [names[i] for i in keep]
        listed = [CustomRow(kept, [(names[i], row[i]) for i in keep]) for row in rows]
        _, cells = await own(datasette, database_name, table_name, [description[i] for i in keep], listed, *args,
                             **kwargs)
        return columns, cells

    display_columns_and_rows.civcas_list_cells_only = True
    display_columns_and_rows.datasettes_own = own
    return display_columns_and_rows


@hookimpl
def startup(datasette):
    # As plugins/civcas_deadline.py wraps its function: at start-up, once per process (TableView looks the name up
    # in its module on each page), not when the file is merely imported.
    from datasette.views import table as table_view

    if not getattr(table_view.display_columns_and_rows, "civcas_list_cells_only", False):
        table_view.display_columns_and_rows = list_cells_only(table_view.display_columns_and_rows)


@hookimpl
def prepare_jinja2_environment(env):
    env.globals["civcas_list_columns"] = LIST_COLUMNS
    # The incidents list shows each incident's range as the incident page and the home page do.
    env.filters["civcas_range"] = range_text


# --- canned-query parameters as select boxes ------------------------------------------------------------

PICKERS = {
    "incident": "select incident_id as value, date_start || ' · ' || title as label from incidents order by date_start desc",
    # One index lookup per actor, not a scan of every incident and figure (0.35 s at 1,000,000 incidents).
    "perpetrator": """select a.actor_id as value, a.name as label from actors a
                      where exists (select 1 from incidents i where i.belligerent = a.actor_id)
                         or exists (select 1 from figures f where f.scope_perpetrator = a.actor_id)
                      order by a.name""",
    "belligerent": """select a.actor_id as value, a.name as label from actors a
                      where exists (select 1 from incidents i where i.belligerent = a.actor_id) order by a.name""",
    "source": "select source_id as value, publisher || ': ' || substr(title, 1, 90) as label from sources order by publisher, title",
    "kind": "select code as value, code || ': ' || meaning as label from codes where table_name = 'discrepancies' and column_name = 'kind'",
    "type": "select code as value, code as label from codes where table_name = 'sources' and column_name = 'source_type'",
}

# Beyond this many values a select box is unusable and heavy (50,000 incidents would be megabytes on every
# query page): the parameter stays a text box, which the queries match by id or by words of a title.
MAX_CHOICES = 500

PICKER_SCRIPT = """
(function () {
  var choices = %s;
  document.querySelectorAll("form.sql input[type=text]").forEach(function (input) {
    var options = choices[input.name];
    if (!options) { return; }
    var select = document.createElement("select");
    select.name = input.name; select.id = input.id;
    var all = document.createElement("option");
    all.value = ""; all.textContent = "(any)";
    select.appendChild(all);
    options.forEach(function (pair) {
      var option = document.createElement("option");
      option.value = pair[0]; option.textContent = pair[1];
      if (pair[0] === input.value) { option.selected = true; }
      select.appendChild(option);
    });
    input.replaceWith(select);
  });
})();
"""


@hookimpl
def extra_body_script(template, database, view_name, datasette):
    if database != DB or not template.startswith("query"):
        return None

    async def inner():
        db = datasette.get_database(DB)
        # The database is immutable (served with -i), so the choices are worked out once per process, and kept
        # on the Datasette instance as plugins/civcas_facets.py keeps its counts.
        script = getattr(datasette, "_civcas_picker_script", None)
        if script is None:
            choices = {}
            for name, sql in PICKERS.items():
                rows = await db.execute(f"{sql} limit {MAX_CHOICES + 1}")
                if len(rows.rows) <= MAX_CHOICES:  # a longer list is no use as a select box: keep the text box
                    choices[name] = [[r["value"], r["label"]] for r in rows]
            # json.dumps does not escape "</script>": escape "<" so no label can end the script.
            script = datasette._civcas_picker_script = PICKER_SCRIPT % json.dumps(choices).replace("<", "\\u003c")
        return script
    return inner


# --- docs as pages, robots.txt ----------------------------------------------------------------------------

def render_doc(name: str) -> tuple[str, str]:
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    html = markdown.markdown(text, extensions=["tables", "toc", "fenced_code", "sane_lists"], output_format="html")
    # Links between documents point at their pages, not the .md files.
    html = re.sub(r'href="(?:\./)?([a-z0-9-]+)\.md(#[^"]*)?"', lambda m: f'href="/docs/{m[1]}{m[2] or ""}"', html)
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), name)
    return title, html


async def doc_page(datasette, request):
    name = request.url_vars["page"]
    if not (DOCS / f"{name}.md").is_file():
        raise NotFound("No such document")
    title, html = render_doc(name)
    docs = sorted(p.stem for p in DOCS.glob("*.md"))
    body = await datasette.render_template("civcas_doc.html", {"title": title, "body": Markup(html), "docs": docs,
                                                               "page": name}, request=request)
    return Response.html(body)


# Allow lines first: crawlers that take the first matching rule (Python's robotparser) and those that take
# the longest (Google) read it the same way. Everything not disallowed is allowed.
ROBOTS = """User-agent: *
Allow: /-/static/
Allow: /-/static-plugins/
Disallow: /-/
Disallow: /*?
Disallow: /*.json
Disallow: /*.csv
Disallow: /*.db
"""


async def robots(datasette, request):
    # Crawlers may read the home page, tables, rows and docs; not the endless query-string space (facets,
    # sorts, canned queries with parameters) or the exports. The sitemap lists every incident page.
    return Response.text(ROBOTS + f"Sitemap: {datasette.absolute_url(request, '/sitemap.xml')}\n")


async def record_json(datasette, request):
    record = await incident_record(datasette, request, request.url_vars["incident_id"])
    if record is None:
        raise NotFound("No such incident")
    record = {k: v for k, v in record.items() if k not in ("metric_labels", "metrics")}
    return Response.json(record)


@hookimpl
def register_routes():
    return [
        (r"^/civcas/incidents/(?P<incident_id>[a-z0-9-]+)/record\.json$", record_json),
        (r"^/docs/(?P<page>[a-z0-9-]+)(?:\.md)?$", doc_page),
        (r"^/robots\.txt$", robots),
    ]
