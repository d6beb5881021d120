"""Security headers on every response.

Datasette 0.65.5 sends no Content-Security-Policy and no X-Content-Type-Options. This plugin adds them to
every HTTP response (pages, JSON, CSV, static files, errors):

* ``Content-Security-Policy``: scripts, styles, fonts and data requests from this site only; images from
  this site, ``data:`` URLs (Leaflet's icons) and the OpenStreetMap tile server the map uses; no plugins
  (``object-src 'none'``); forms post only here; framing only by the site itself (``frame-ancestors 'self'``:
  the home page embeds a chart);
  ``base-uri 'self'`` so injected markup cannot re-point relative URLs.
  Datasette's pages carry inline ``<script>`` blocks (facet toggles, datasette-cluster-map's settings,
  datasette-leaflet's file URLs, plugins/civcas_map.py) and inline styles, whose text changes with column
  names and plugin versions, so ``'unsafe-inline'`` is allowed for scripts and styles. Everything a
  curator types is escaped by the templates (tests/test_security.py checks it in a real browser); the
  policy is the second line, blocking script and data from any other origin.
* ``X-Content-Type-Options: nosniff``: a CSV or JSON response is never run as script or rendered as HTML.
* ``X-Frame-Options: SAMEORIGIN``: ``frame-ancestors`` for browsers that predate CSP 2.
* The chart pages (``/-/dashboards``) also get ``'unsafe-eval'``: Vega compiles chart expressions with
  ``new Function``.

Static files also get a ``Cache-Control`` (Datasette 0.65.5 sends none, and no ``Last-Modified`` or ``ETag``
either, so a browser fetched the style sheet and Leaflet again for every page: 5 to 7 requests per incident
page instead of 1 or 2):

* ``/-/static/...?<hash>``: Datasette's own files, named by their content's hash: a year, ``immutable``;
* other files under ``/-/static/`` and ``/-/static-plugins/`` (pinned versions of Datasette and its plugins)
  and the documentation under ``/docs/``: an hour, so a new release reaches every reader within the hour.

The tile server comes from metadata.yml (``plugins: datasette-cluster-map: tile_layer``), so the policy
follows it; ``Referrer-Policy`` is set by datasette-referrer-policy.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from datasette import hookimpl

DEFAULT_TILES = "https://*.tile.openstreetmap.org"


def tile_origins(datasette) -> list[str]:
    config = datasette.plugin_config("datasette-cluster-map") or {}
    layer = config.get("tile_layer")
    if not layer:
        return [DEFAULT_TILES]
    parts = urlsplit(layer.replace("{s}", "*"))
    return [f"{parts.scheme}://{parts.netloc}"]


# Vega (datasette-dashboards' charts) compiles its expressions with `new Function`: only the chart pages, whose
# data comes from this site's own SQL, may evaluate strings as script.
EVAL_PATHS = ("/-/dashboards",)


def policy(datasette, path: str = "/") -> str:
    images = " ".join(["'self'", "data:", *tile_origins(datasette)])
    scripts = "'self' 'unsafe-inline'" + (" 'unsafe-eval'" if path.startswith(EVAL_PATHS) else "")
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        f"img-src {images}",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


def security_headers(datasette, path: str = "/") -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy(datasette, path).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]


STATIC = ("/-/static/", "/-/static-plugins/", "/docs/")
HASHED = "public, max-age=31536000, immutable"
AN_HOUR = "public, max-age=3600"


def cache_control(path: str, query_string: bytes) -> bytes | None:
    if not path.startswith(STATIC):
        return None
    return (HASHED if path.startswith("/-/static/") and query_string else AN_HOUR).encode()


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def with_headers(scope, receive, send):
            if scope.get("type") != "http":
                return await app(scope, receive, send)
            extra = security_headers(datasette, scope.get("path", "/"))
            caching = cache_control(scope.get("path", "/"), scope.get("query_string", b""))
            names = {name for name, _ in extra}

            async def send_with_headers(message):
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                    if caching and message.get("status") == 200:
                        headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                        headers.append((b"cache-control", caching))
                    message = {**message, "headers": headers + extra}
                await send(message)

            await app(scope, receive, send_with_headers)
        return with_headers
    return wrap
