"""Make sorted table pages page correctly (a workaround for a Datasette 0.65.5 bug).

Datasette orders the FIRST page of a sorted table by the sort column alone (`order by year desc limit 51`)
but every later page, reached with `?_next=<value>,<pk>`, by the column and then the primary key. When the
column has ties or NULLs, the first page's order among tied rows is whatever the index or sorter gives, so
walking the pages (or following `next_url` in the JSON) repeats some rows and skips others:
tests/test_paging.py shows it on a plain Datasette (strict xfail) and checks this fix.

The fix: a first page of a sorted table is asked for with a `_next` that means "from the very start", so
Datasette takes its second code path, which orders by the column and then the primary key:

* ascending (`_sort=col`): `_next=$null,` (NULLs sort first; `$null` with an empty key selects every NULL
  row with a key above '' and every non-NULL row);
* descending (`_sort_desc=col`, or the table's default `sort_desc` in metadata): `_next=<top>,` where <top>
  is the largest character there is (U+10FFFF), above every number and every text a column can hold, so
  `col < top or col is null` selects every row.

Counts and facets are computed without `_next` and are unchanged; the next page's link is Datasette's own.
The streamed CSV (`_stream=1`), which refuses `_next`, is left alone, except for its page size: Datasette 0.65.5
reads the first page of a stream with `_size=max` (2,000 rows) but every later one at the table's page size
(50 rows for incidents), unless the URL itself says `_size=max`: 40 times the queries, and 3 MB/s at 1,000,000
incidents. A stream without `_size` is asked for with `_size=max` (Datasette's own "Download CSV" form adds it).
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl

TOP = "~F4~8F~BF~BF"  # U+10FFFF, tilde-encoded as Datasette encodes _next components
DATABASE = "civcas"


def first_page_next(datasette, table: str, args: dict[str, str]) -> str | None:
    """The _next that makes this request's first page ordered like every later page, or None."""
    if "_next" in args or args.get("_stream") or "_sort_by_desc" in args:
        return None
    if args.get("_sort"):
        return "$null,"
    if args.get("_sort_desc"):
        return TOP + ","
    meta = datasette.table_metadata(DATABASE, table) or {}
    if meta.get("sort_desc"):
        return TOP + ","
    if meta.get("sort"):
        return "$null,"
    return None


async def table_names(datasette) -> set[str]:
    """The database's tables, read once (the database is immutable), not on every request."""
    cached = getattr(datasette, "_civcas_paging_tables", None)
    if cached is None:
        db = datasette.databases.get(DATABASE)
        cached = set(await db.table_names()) if db is not None else set()
        datasette._civcas_paging_tables = cached
    return cached


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def paging(scope, receive, send):
            if scope.get("type") == "http" and scope.get("method") == "GET":
                parts = scope.get("path", "").strip("/").split("/")
                if len(parts) == 2 and parts[0] == DATABASE:
                    table = parts[1]
                    for ext in (".json", ".csv"):
                        if table.endswith(ext):
                            table = table[: -len(ext)]
                    if table in await table_names(datasette):
                        query = scope.get("query_string", b"").decode("latin-1")
                        pairs = parse_qsl(query, keep_blank_values=True)
                        args, added = dict(pairs), []
                        extra = first_page_next(datasette, table, args)
                        if extra is not None:
                            added.append(("_next", extra))
                        elif parts[1].endswith(".csv") and args.get("_stream") and "_size" not in args:
                            added.append(("_size", "max"))
                        if added:
                            query = urlencode(pairs + added, safe="$,~")
                            scope = {**scope, "query_string": query.encode("latin-1")}
            await app(scope, receive, send)
        return paging
    return wrap
