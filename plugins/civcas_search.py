"""Full-text search of the incidents list that stays fast when a word matches a large share of the list.

Datasette searches a table with `rowid in (select rowid from incidents_fts where incidents_fts match ...)`.
SQLite always drives that query from the matches: it reads every matching row to sort them by the list's order
(date_start, newest first), and counts them the same way. For a word in 6 % of 1,000,000 incidents ("raqqa",
59,392 matches) that is two reads of 60,000 rows scattered over the table: 120-190 ms a page, while the matches
alone are counted from the index in 4 ms (docs/performance.md, "Site").

For such a word the other way round is faster: walk the list's own index in its order, test each row against
the search and stop after a page (with 6 % matching, a page of 50 is found after ~850 rows). There are two ways
to test a row, each best for its own range of words:

* `list`: `+incidents.rowid in (select rowid from incidents_fts where incidents_fts match ...)`. SQLite reads the
  matches once into a list (the `+` keeps it from driving the query from them) and tests each row of the walk
  against that list: ~0.17 µs per match to make it, ~0.1-0.2 µs per row walked.
* `probe`: `exists (select 1 from incidents_fts where rowid = incidents.rowid and incidents_fts match ...)`, a
  look-up in the full-text index for each row walked: ~50 µs a row, but nothing to make first, so it wins for a
  word in most incidents ("air": 1,000,000 matches, a list would take 170 ms; 51 probes take 3 ms).

Datasette's own way costs 2-7 µs per match (the page and the count; more for a rarer word). With `m` matches,
`n` rows and a page of `p`, a walk tests about p x n / m rows, so this plugin picks per request the least of

    datasette  5 m          list  0.17 m + 0.2 p n / m          probe  50 p n / m

(µs, measured at 1,000,000 incidents with pages of 51 rows: docs/performance.md, "Site"), counting the matches
from the full-text index (cached per process; the database is immutable). A walk is asked for on arrival:
`_search=` becomes `_civcas_search=` (Datasette's own search then stays out of it and the `filters_from_request`
hook below writes the walking clause; the way is kept in the request's scope), and `_nocount=1` is added
(Datasette would count by the same walk, over the whole table); the HTML page is given the count of matches from
the index when the search is its only filter. Links on such a page carry `_civcas_search`; any request with
either argument is decided afresh, so both spellings work and a rare word is always searched Datasette's way.
`_searchmode=raw` (FTS5 query syntax) is left to Datasette.
"""
from __future__ import annotations

from collections import OrderedDict
from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl
from datasette.filters import FilterArguments

DATABASE = "civcas"
TABLE = "incidents"
FTS = "incidents_fts"
ARG = "_civcas_search"
WAY = "civcas_search_way"  # the scope key that carries the way chosen for a request
# µs per match read (Datasette), per match listed, per row walked against the list, per row probed
COST_READ, COST_LIST, COST_WALK, COST_PROBE = 5.0, 0.17, 0.2, 50.0
CACHE_SIZE = 2048
# Arguments that do not select rows (as in plugins/civcas_facets.py).
NEUTRAL = {"_sort", "_sort_desc", "_sort_by_desc", "_size", "_next", "_col", "_nocol", "_labels", "_nolabels",
           "_facet_size", "_nocount", "_nofacet", "_trace", "_shape", "_json", "_nl", "_extra", "_timelimit",
           "_stream", "_dl", "_context", "_nosuggest", "_facet", ARG, "_search"}


async def matches(datasette, text: str) -> int | None:
    """How many incidents the search matches, from the full-text index alone; None when it cannot be counted."""
    cache = getattr(datasette, "_civcas_search_counts", None)
    if cache is None:
        cache = datasette._civcas_search_counts = OrderedDict()
    if text in cache:
        cache.move_to_end(text)
        return cache[text]
    db = datasette.databases.get(DATABASE)
    if db is None:
        return None
    try:
        n = (await db.execute(f"select count(*) from {FTS} where {FTS} match escape_fts(:q)", {"q": text})).single_value()
    except Exception:  # noqa: BLE001 - no FTS table, or a search FTS refuses: leave it to Datasette
        n = None
    cache[text] = n
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return n


async def rows_total(datasette) -> int:
    total = getattr(datasette, "_civcas_search_total", None)
    if total is None:
        db = datasette.databases.get(DATABASE)
        total = (await db.execute(f"select max(rowid) from {TABLE}")).single_value() or 0 if db else 0
        datasette._civcas_search_total = total
    return total


def page_size(datasette, args: dict) -> int:
    size = args.get("_size") or (datasette.table_metadata(DATABASE, TABLE) or {}).get("size")
    if size == "max":
        return datasette.setting("max_returned_rows")
    try:
        return max(1, int(size))
    except (TypeError, ValueError):
        return datasette.setting("default_page_size")


def way(matches: int, rows: int, page: int) -> str | None:
    """The cheapest way to search: None (Datasette's own), "list" or "probe" (a walk of the list's index)."""
    if not matches:
        return None
    walked = page * rows / matches
    costs = {None: COST_READ * matches, "list": COST_LIST * matches + COST_WALK * walked,
             "probe": COST_PROBE * walked}
    return min(costs, key=costs.get)


async def choose(datasette, text: str, args: dict) -> str | None:
    n = await matches(datasette, text)
    return way(n or 0, await rows_total(datasette), page_size(datasette, args))


@hookimpl
def asgi_wrapper(datasette):
    paths = {f"/{DATABASE}/{TABLE}", f"/{DATABASE}/{TABLE}.json"}

    def wrap(app):
        async def search(scope, receive, send):
            if scope.get("type") == "http" and scope.get("path") in paths and scope.get("query_string"):
                pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                texts = [v for k, v in pairs if k == "_search"] or [v for k, v in pairs if k == ARG]
                if texts and texts[0].strip() and ("_searchmode", "raw") not in pairs:
                    text = texts[0]
                    args = dict(pairs)
                    pairs = [(k, v) for k, v in pairs if k not in ("_search", ARG)]
                    chosen = await choose(datasette, text, args)
                    if chosen:
                        scope = {**scope, WAY: chosen}
                        pairs.append((ARG, text))
                        if ("_nocount", "1") not in pairs:
                            pairs.append(("_nocount", "1"))
                    else:
                        pairs.append(("_search", text))
                    scope = {**scope, "query_string": urlencode(pairs, safe="$,~").encode("latin-1")}
            await app(scope, receive, send)
        return search
    return wrap


@hookimpl
def filters_from_request(request, database, table, datasette):
    if database != DATABASE or table != TABLE or not request.args.get(ARG):
        return None
    text = request.args.get(ARG)
    if request.scope.get(WAY) == "list":
        clause = f"+{TABLE}.rowid in (select rowid from {FTS} where {FTS} match escape_fts(:civcas_search))"
    else:  # "probe", or a request that did not pass the wrapper: correct for any word
        clause = (f"exists (select 1 from {FTS} where {FTS}.rowid = {TABLE}.rowid "
                  f"and {FTS} match escape_fts(:civcas_search))")
    return FilterArguments([clause], {"civcas_search": text}, [f'search matches "{text}"'], {"search": text})


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if view_name != "table" or database != DATABASE or table != TABLE or request is None \
            or not request.args.get(ARG):
        return None

    async def inner():
        pairs = [(k, v) for k in request.args for v in request.args.getlist(k)]
        if all(k in NEUTRAL for k, _ in pairs):
            n = await matches(datasette, request.args.get(ARG))
            if n is not None:
                return {"filtered_table_rows_count": n}
        return {}
    return inner
