"""Serve the home page and the database page from memory after their first rendering.

`/` and `/civcas` cost 80-150 ms a request at any size of the data (docs/performance.md, "Site" 6): Datasette
introspects and lists every table, view and query (over 100 SQL statements for the database page) and the home
page runs its own queries. The database is immutable (served with `-i`), so what these two pages show never
changes while the process runs: the first response to each is kept and replayed, status and headers included.

Kept per (path, Host, scheme) because the home page writes its own absolute address into the citation; only
plain GET/HEAD requests with no query string and no Datasette cookie (a signed-in actor or a flash message could
change the page) are answered from memory or stored; only 200 responses of at most MAX_BYTES are stored, and at
most MAX_ENTRIES (one per Host header a client can invent). A restart (a new build) starts empty.
"""
from __future__ import annotations

from datasette import hookimpl

DATABASE = "civcas"
PATHS = {"/", f"/{DATABASE}", f"/{DATABASE}/"}
MAX_BYTES = 2_000_000
MAX_ENTRIES = 32


def cache_key(scope) -> tuple | None:
    if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
        return None
    if scope.get("path") not in PATHS or scope.get("query_string"):
        return None
    headers = dict(scope.get("headers") or [])
    if b"ds_" in headers.get(b"cookie", b""):
        return None
    return (scope["path"], headers.get(b"host", b""), scope.get("scheme", "http"),
            headers.get(b"x-forwarded-proto", b""), headers.get(b"x-forwarded-host", b""))


@hookimpl
def asgi_wrapper(datasette):
    store: dict[tuple, tuple[dict, bytes]] = {}

    def wrap(app):
        async def cached(scope, receive, send):
            key = cache_key(scope)
            if key is None:
                return await app(scope, receive, send)
            hit = store.get(key)
            if hit is not None:
                start, body = hit
                await send(start)
                await send({"type": "http.response.body",
                            "body": b"" if scope.get("method") == "HEAD" else body})
                return
            held: dict = {"body": b"", "ok": scope.get("method") == "GET"}

            async def keep(message):
                if message["type"] == "http.response.start":
                    held["start"] = message
                    held["ok"] = held["ok"] and message.get("status") == 200 and not any(
                        name.lower() == b"set-cookie" for name, _ in message.get("headers", []))
                elif message["type"] == "http.response.body" and held["ok"]:
                    held["body"] += message.get("body", b"")
                    if len(held["body"]) > MAX_BYTES:
                        held["ok"] = False
                    elif not message.get("more_body") and len(store) < MAX_ENTRIES:
                        store[key] = (held["start"], held["body"])
                await send(message)

            await app(scope, receive, keep)
        return cached
    return wrap
