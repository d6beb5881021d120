"""Facets of the large tables from counts the build made, not from a GROUP BY over the whole table per request.

Datasette computes a table page's facets over every row its filters select, on every request, HTML or JSON. On
an unfiltered page of a large table that is the whole table: ~1 s per request for the six incident facets at
1,000,000 incidents, two of them cut off by facet_time_limit_ms (docs/performance.md, "Site" 1). The database is
immutable, so the build counts those values once into `facet_counts` (civcas/pagedata.py), and this plugin:

* on an unfiltered page of a counted table (no filter, search or `_where`; sorting, page size, paging and column
  choice do not change the counts) adds `_nofacet=1` to the request, so Datasette counts nothing, and gives the
  HTML page the stored counts in Datasette's own facet format (`facet_results`), so they look and link
  (`?country=SY`) exactly like computed facets. A `_facet=` on a column that is not counted is left to Datasette.
* on a filtered page of a table that has no default facets in metadata (incidents, sources: a filter can still
  select hundreds of thousands of rows) offers the counted columns as links that ask Datasette for that facet
  (`civcas_facet_links`, shown by templates/table.html); each costs at most facet_time_limit_ms.
* on an HTML page filtered by one counted value (`?country=SY`, `?belligerent=...`: the link a facet gives),
  shows the stored count of that value and adds `_nocount=1`, so Datasette does not count the rows again (24 ms
  for the 600,000 incidents in Syria at 1,000,000, a quarter of the page). A value not among the stored ones, a
  second filter, a search or the JSON are counted by Datasette as usual.

The counts are read once per process (the database is immutable). A database without `facet_counts` (an older
build) simply shows Datasette's configured facets.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl

DATABASE = "civcas"
COUNT = "civcas_stored_count"  # the scope key that carries a filtered page's stored count to its template
# Query-string arguments that do not change which rows a table page selects.
NEUTRAL = {"_sort", "_sort_desc", "_sort_by_desc", "_size", "_next", "_col", "_nocol", "_labels", "_nolabels",
           "_facet_size", "_nocount", "_nofacet", "_trace", "_shape", "_json", "_nl", "_extra", "_timelimit",
           "_stream", "_dl", "_context", "_nosuggest"}


async def counts(datasette) -> dict[str, dict[str, dict]]:
    """table -> column -> {"distinct": n, "values": [(value, label, count), ...]}, read once per process."""
    cached = getattr(datasette, "_civcas_facet_counts", None)
    if cached is None:
        cached = {}
        db = datasette.databases.get(DATABASE)
        if db is not None and await db.table_exists("facet_counts"):
            rows = await db.execute("select table_name, column_name, rank, value, label, count from facet_counts "
                                    "order by rowid")
            for r in rows:
                column = cached.setdefault(r["table_name"], {}).setdefault(
                    r["column_name"], {"distinct": 0, "values": []})
                if r["rank"] == 0:
                    column["distinct"] = r["count"]
                else:
                    column["values"].append((r["value"], r["label"], r["count"]))
            for table in cached.values():
                for column in table.values():
                    column["values"].sort(key=lambda v: -v[2])
                    column["count_of"] = {str(value): count for value, _, count in column["values"]}
        datasette._civcas_facet_counts = cached
    return cached


def table_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) != 2 or parts[0] != DATABASE:
        return None
    table = parts[1]
    for ext in (".json", ".csv"):
        if table.endswith(ext):
            return None if ext == ".csv" else table[: -len(ext)]
    return table


def unfiltered(pairs: list[tuple[str, str]]) -> bool:
    return all(key in NEUTRAL or key == "_facet" for key, _ in pairs)


def stored_count(path: str, pairs: list[tuple[str, str]], columns: dict) -> int | None:
    """The stored count of the rows an HTML page selects when its one filter is a counted value, else None."""
    if path.endswith((".json", ".csv")):
        return None
    selecting = [(key, value) for key, value in pairs if key not in NEUTRAL and key != "_facet"]
    if len(selecting) != 1:
        return None
    key, value = selecting[0]
    column = key[: -len("__exact")] if key.endswith("__exact") else key
    if column not in columns or not value:
        return None
    return columns[column]["count_of"].get(value)


def counted_facets(pairs: list[tuple[str, str]], columns: dict) -> bool:
    """Every `_facet=` asked for is a counted column (or there is none)."""
    return all(value in columns for key, value in pairs if key == "_facet")


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def facets(scope, receive, send):
            if scope.get("type") == "http" and scope.get("method") in ("GET", "HEAD"):
                table = table_of(scope.get("path", ""))
                if table:
                    columns = (await counts(datasette)).get(table)
                    if columns:
                        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
                        if unfiltered(pairs) and counted_facets(pairs, columns) and ("_nofacet", "1") not in pairs:
                            pairs.append(("_nofacet", "1"))
                            scope = {**scope, "query_string": urlencode(pairs, safe="$,~").encode("latin-1")}
                        elif (n := stored_count(scope["path"], pairs, columns)) is not None:
                            if ("_nocount", "1") not in pairs:
                                pairs.append(("_nocount", "1"))
                            scope = {**scope, COUNT: n,
                                     "query_string": urlencode(pairs, safe="$,~").encode("latin-1")}
            await app(scope, receive, send)
        return facets
    return wrap


# Arguments this plugin (`_nofacet`, `_nocount`) and plugins/civcas_paging.py (`_next` on a first page) add to a
# request: left out of the links written here and of the filter form, so a filter chosen from a page still gets
# its facets and its count. (Datasette's export links keep them: each request is decided afresh on arrival.)
ADDED = ("_next", "_nofacet", "_nocount")


def form_hidden_args(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Datasette's filter form carries every `_` argument over; not those added here."""
    return [(k, v) for k, v in pairs
            if k.startswith("_") and k not in ("_sort", "_sort_desc", "_search", *ADDED) and "__" not in k]


def link(request, pairs: list[tuple[str, str]], add: list[tuple[str, str]]) -> str:
    kept = [(k, v) for k, v in pairs if k not in ADDED]
    return request.path + "?" + urlencode(kept + add)


def facet_results(request, pairs, columns: dict, shown: list[str], size: int | str) -> dict:
    """The stored counts in the shape Datasette's _facet_results.html reads."""
    out = {}
    for column in shown:
        info = columns[column]
        limit = len(info["values"]) if size == "max" else int(size)
        results = [{
            "value": value, "label": label if label is not None else value, "count": count,
            "toggle_url": link(request, pairs, [(column, str(value))]),
            "selected": False,
        } for value, label, count in info["values"][:limit]]
        out[column] = {"name": column, "type": "column", "hideable": False, "toggle_url": "",
                       "results": results, "truncated": info["distinct"] > len(results)}
    return out


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if view_name != "table" or database != DATABASE or request is None:
        return None

    async def inner():
        columns = (await counts(datasette)).get(table)
        if not columns:
            return {}
        pairs = [(k, v) for k in request.args for v in request.args.getlist(k)]
        meta = datasette.table_metadata(DATABASE, table) or {}
        if unfiltered(pairs) and counted_facets(pairs, columns):
            asked = [v for k, v in pairs if k == "_facet"]
            shown = list(columns) + [c for c in asked if c not in columns]
            size = request.args.get("_facet_size") or meta.get("facet_size") or datasette.setting("default_facet_size")
            results = facet_results(request, pairs, columns, [c for c in shown if c in columns], size)
            return {"facet_results": results, "sorted_facet_results": list(results.values()),
                    "facets_timed_out": [], "form_hidden_args": form_hidden_args(pairs)}
        out = {}
        if request.scope.get(COUNT) is not None:
            out = {"filtered_table_rows_count": request.scope[COUNT], "form_hidden_args": form_hidden_args(pairs)}
        if meta.get("facets"):
            return out
        asked = {v for k, v in pairs if k == "_facet"}
        links = [(column, link(request, pairs, [("_facet", column)])) for column in columns if column not in asked]
        return {**out, "civcas_facet_links": links}
    return inner
