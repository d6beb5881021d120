"""Clean 4xx answers where Datasette 0.65.5 would answer 500 to a malformed or oversized request.

A public site must not answer a request's own mistakes with "500 Internal Server Error" (and a traceback
line, or the server's file paths, in the page). Datasette handles most bad input itself; these it does not,
found by tests/test_fuzz.py and tests/test_limits.py:

* the SQLite limits of plugins/civcas_limits.py hit from a table or row page (its views catch only
  OperationalError; Python raises DataError for "string or blob too big" and MemoryError for the heap limit),
  and the time limit's QueryInterrupted escaping its CSV renderer;
* other sqlite3 errors a read-only database can only owe to the request (a NUL byte in a `_facet` column name,
  a `_next` of 2**63);
* Datasette's own input errors raised with the default status 500 ("Cannot sort table by x");
* parameters it parses without catching the error (`_through=` that is not JSON);
* a static path the filesystem refuses (`/docs/` plus 5,000 characters: "File name too long", whose message
  carries the server's own path).

Each is rendered as Datasette's own error page (HTML or JSON, as the request asked) with a 400 or 404.
"""
from __future__ import annotations

import sqlite3
import sys
import traceback

import datasette.handle_exception
from datasette import hookimpl

# Datasette's default error page prints every exception with `rich` when rich is importable (frictionless,
# among others, installs it). For a 404 raised outside an `except` block (an unknown path such as
# /civcas/actors/x/y) rich refuses ("Value for 'trace' required if not called in except: block") and the
# request ends in a bare 500. A public server should not dump locals to its log for every 404 either.
datasette.handle_exception.rich = None


@hookimpl
def handle_exception(datasette, request, exception):
    # Imported here: importing these at module level, before Datasette has registered its default
    # plugins, would register datasette.handle_exception half-initialised (a circular import).
    from datasette.database import QueryInterrupted
    from datasette.handle_exception import handle_exception as datasette_error_page
    from datasette.views.base import DatasetteError

    if isinstance(exception, DatasetteError) and exception.status == 500:
        # Datasette 0.65.5 raises its input errors ("Cannot sort table by x", "Cannot use _sort and _sort_desc at
        # the same time", "Invalid _through") with the default status 500: they are the request's fault, a 400.
        exception.status = 400
        return datasette_error_page(datasette, request, exception)
    if isinstance(exception, (sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.IntegrityError,
                              sqlite3.InterfaceError)):
        # On a read-only database these come from the request: DataError "string or blob too big";
        # ProgrammingError "the query contains a null character" (a NUL in a column name given to _facet or
        # _sort); IntegrityError "datatype mismatch" (a _next of 2**63 bound as a rowid).
        message = f"Query refused: {exception}"
    elif isinstance(exception, QueryInterrupted):
        message = "SQL query took too long: the time limit is 2 seconds (sql_time_limit_ms)"
    elif isinstance(exception, MemoryError):
        message = "Query refused: it needs more memory than one request may use"
    elif isinstance(exception, (ValueError, KeyError, IndexError, TypeError, OverflowError)):
        # Datasette 0.65.5 parses some parameters without catching what malformed input raises (`_through=`
        # that is not JSON, say). A public site answers 400, not 500; the traceback still goes to the log.
        traceback.print_exception(exception, file=sys.stderr)
        return datasette_error_page(datasette, request, DatasetteError(
            "Bad request: a parameter could not be read", title="Bad request", status=400))
    elif isinstance(exception, OSError):
        # A static file path the filesystem refuses (e.g. /docs/ plus 5,000 characters: "File name too long").
        # Datasette would answer 500 with the server's own path in the message; this is a plain 404.
        return datasette_error_page(datasette, request, DatasetteError("Not found", title="Not found", status=404))
    else:
        return None
    return datasette_error_page(datasette, request, DatasetteError(message, title="Query too large", status=400))
