"""Table permissions read from the metadata once per table, not on every request.

Datasette 0.65.5 answers "may this actor view this table?" (every table page, row page and JSON request asks it
once or twice) by deep-copying the whole metadata (for civcas ~1,600 objects: descriptions of every column,
the canned queries) and merging it, to find the table's `allow` blocks. That took ~4 ms a call: 8 ms of the
40 ms the map's data request took at 1,000,000 incidents (docs/performance.md, "Site").

The metadata is read once when the server starts (scripts/serve.sh has no reload, and no plugin here serves
metadata of its own), so the `allow` blocks of a table are the same for every request: this plugin keeps each
table's answer once it has been worked out, by Datasette's own code. Whether an actor matches them is still
decided per request.
"""
from __future__ import annotations

import functools

from datasette import hookimpl

# Far more tables than civcas has; a bound all the same, since a URL can name any table.
CACHE_SIZE = 1024


@hookimpl
def startup(datasette):
    if not hasattr(datasette._table_permission_allows, "cache_info"):
        datasette._table_permission_allows = functools.lru_cache(maxsize=CACHE_SIZE)(
            datasette._table_permission_allows)
