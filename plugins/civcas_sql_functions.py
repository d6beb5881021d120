"""SQL math functions for the canned queries, on any SQLite.

The `incidents_near` canned query uses radians(), sin(), cos() and acos(). SQLite only
has them from 3.35 when built with SQLITE_ENABLE_MATH_FUNCTIONS; the image that
`datasette publish` builds (python:3.11.0-slim-bullseye) links SQLite 3.34.1, where the
query would fail with "no such function: radians". This plugin registers Python
versions on every connection that lacks them, and leaves built-in ones alone.
"""
from __future__ import annotations

import math

from datasette import hookimpl


def _wrap(fn):
    def safe(x):
        if x is None:
            return None
        try:
            return fn(float(x))
        except (TypeError, ValueError):
            return None
    return safe


FUNCTIONS = {
    "radians": _wrap(math.radians),
    "degrees": _wrap(math.degrees),
    "sin": _wrap(math.sin),
    "cos": _wrap(math.cos),
    "acos": _wrap(math.acos),
    "sqrt": _wrap(math.sqrt),
}


def register_math_functions(conn, force: bool = False) -> list[str]:
    """Register each missing math function on conn (all of them with force=True)."""
    added = []
    for name, fn in FUNCTIONS.items():
        if not force:
            try:
                conn.execute(f"select {name}(0.5)").fetchall()
                continue
            except Exception:  # sqlite3 or pysqlite3 OperationalError: no such function
                pass
        conn.create_function(name, 1, fn, deterministic=True)
        added.append(name)
    return added


@hookimpl
def prepare_connection(conn):
    register_math_functions(conn)
