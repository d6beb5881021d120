"""What `datasette inspect` used to write to a file before each start, worked out by the server at start-up.

Datasette serves an immutable database (`-i`) with the row counts and the file's hash it is given, or counts a
table's rows again on every page that shows them. scripts/serve.sh used to run `datasette inspect` for them and
pass its file with `--inspect-file`: a second Python process that imported Datasette and every plugin only to
do what this start-up hook does, ~1.3 s more before the site answered (docs/performance.md, "Test suite").

The same numbers as `datasette inspect` (tests/test_site.py compares them): the SHA-256 of the file (the download's
ETag and the home page's hash) and `count(*)` of every table, each given an hour as `datasette inspect` does. A
database that came with inspect data, or is mutable, is left as Datasette has it.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from datasette import hookimpl
from datasette.inspect import inspect_hash

COUNT_LIMIT_MS = 3600 * 1000  # datasette inspect's own limit per table


@hookimpl
def startup(datasette):
    async def inner():
        for name, db in datasette.databases.items():
            if db.is_mutable or db.is_memory or (datasette.inspect_data or {}).get(name):
                continue
            db.cached_hash = await asyncio.to_thread(inspect_hash, Path(db.path))
            await db.table_counts(limit=COUNT_LIMIT_MS)  # an immutable database keeps what it counted
    return inner
