"""Full-text search of the incidents list that stays fast when a word matches a large share of the list.

Datasette searches a table with `rowid in (select rowid from incidents_fts where incidents_fts match ...)`.
SQLite always drives that query from the matches: it reads every matching row to sort them by the list's order
(date_start, newest first), and counts them the same way. For a word in 6 % of 1,000,000 incidents ("raqqa",
59,392 matches) that is two reads of 60,000 rows scattered over the table: ~300 ms a page, while the matches
alone are counted from the index in 5 ms (docs/performance.md, "Site").

For such a word the other way round is faster: walk the list's own index in its order and test each row against
the search (`exists (select 1 from incidents_fts where rowid = incidents.rowid and incidents_fts match ...)`),
stopping after a page: with 6 % matching, a page of 50 is found after ~850 rows. For a rare word that walk would
go through the whole table, so this plugin picks per request: it counts the matches from the full-text index
(cached per process; the database is immutable) and walks only when

    matches^2 > page size x rows x WALK_COST

(the walk tests page size x rows / matches rows at ~19 times the cost of reading one match: measured at 1,000,000
incidents). Such a request is rewritten on arrival: `_search=` becomes `_civcas_search=` (Datasette's own search
then stays out of it and the `filters_from_request` hook below writes the walking clause) and `_nocount=1` is
added (Datasette would count by the same walk, over the whole table); the HTML page is given the count of matches
from the index when the search is its only filter. Links on such a page carry `_civcas_search`; any request with
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
WALK_COST = 19
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


async def walk(datasette, text: str, args: dict) -> bool:
    n = await matches(datasette, text)
    if not n:
        return False
    return n * n > page_size(datasette, args) * await rows_total(datasette) * WALK_COST


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
                    if await walk(datasette, text, args):
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
