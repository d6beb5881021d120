"""Bound the memory one request can make the server use.

Datasette's SQL time limit bounds time, not memory: `select zeroblob(1000000000)` builds a 1 GB
value in well under the 2 s limit, and Datasette 0.65.5 then writes each zero byte into JSON as
six characters, so one unauthenticated URL could take the whole process down. Three bounds, all
set on every connection Datasette opens (the `prepare_connection` hook):

* ``SQLITE_LIMIT_LENGTH``: no string or blob a query builds may exceed ``MAX_VALUE_BYTES``.
  SQLite refuses it with "string or blob too big" before allocating it; Datasette answers 400.
  The limit also applies to stored values, so it sits far above the longest real cell
  (a test checks the margin against the built database).
* A budget per query result: the row factory adds up the size of every value fetched and stops
  the query with "result too large" once ``MAX_RESULT_BYTES`` is passed. This bounds rows x size
  (2,000 rows of values just under the length limit would otherwise still be gigabytes).
  Values are weighted by what they cost once rendered: 6 characters per byte of a blob (JSON
  writes a zero byte as ``\\u0000``) and per character of text (non-ASCII and control characters
  are escaped the same way). The CSV stream and `_size=max` fetch page by page, one budget each.
* SQLite's own heap (sorters, group_concat, temporary b-trees) is capped by ``PRAGMA
  hard_heap_limit`` for the process.

Bounds on time as well. Datasette's time limit (sql_time_limit_ms) interrupts a query between steps, never
inside one function call, and a few of SQLite 3.40's functions can spend seconds in one call on values within
the length limit: one URL held a SQL thread for several times the limit. They are replaced on every
connection by a function that answers such a call itself, at once, and hands every other call to SQLite's own
function (on a private in-memory connection), so their results stay SQLite's:

* ``printf``/``format``: ``printf('%.*c', 1000000000, 'x')`` (or ``%.1000000000c``) spends 6-7 s repeating
  the character before it gives up at the length limit and returns NULL. A ``%c`` that would repeat its
  character more than ``MAX_VALUE_BYTES`` times returns that NULL at once.
* ``instr``/``replace``: SQLite compares the pattern at every position (length x length: 4 s for a pattern
  of 100,000 characters in a text of 1,000,000, ~12 s at worst). On text (and ``instr`` on two blobs) they
  are Python's own search, which is linear and gives the same answer; numbers and mixed types go to SQLite.
* ``trim``/``ltrim``/``rtrim`` with a set of characters: SQLite compares each character with every one of the
  set (5 s for 40,000 by 40,000, minutes at the length limit). On text they look each character up in a
  Python set instead (Python's own strip compares with every character of the set too).
* ``like``/``glob`` compare the pattern at every position too: 13 s for a pattern of 40,000 characters in a
  text of 200,000. They stay SQLite's (a Python ``like`` would slow every `__contains` filter), but a
  pattern may be at most ``MAX_PATTERN_BYTES`` long (SQLite's default: 50,000), which bounds one call to
  ~0.3 s at the length limit; a longer one is refused with "LIKE or GLOB pattern too complex" (a 400).

A query made of many such calls is ended near its time limit by plugins/civcas_deadline.py.

The deployment adds a process-wide limit on top (scripts/serve.sh: ``ulimit -v``).
"""
from __future__ import annotations

import re
import sqlite3
import weakref

from datasette import hookimpl

# About 400 times the longest cell civcas holds (a few KB of summary or notes).
MAX_VALUE_BYTES = 1_000_000
# What one query may hand to a renderer, in rendered characters (see _cost): 2,000 rows of 4 KB
# each fit, 48 MB of JSON is the worst case.
MAX_RESULT_BYTES = 48_000_000
# The longest LIKE or GLOB pattern, in bytes: a `__contains` filter of 126 ASCII or 63 Arabic characters.
MAX_PATTERN_BYTES = 128
# SQLite's heap for the whole process (page caches of every connection included).
HARD_HEAP_LIMIT = 512 * 1024 * 1024

TOO_LARGE = (f"result too large: this query returns more than {MAX_RESULT_BYTES // 1_000_000} MB; "
             "select fewer rows or columns, or download the database")


def _cost(value) -> int:
    if isinstance(value, str):
        # Worst case once JSON-escaped; ASCII text is all real data ever has, and costs 1 per char.
        return len(value) if value.isascii() else 6 * len(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return 6 * len(value)
    return 8


class ResultBudget:
    """A row factory that returns sqlite3.Row and refuses to build a result past the budget."""

    def __init__(self, limit: int = MAX_RESULT_BYTES):
        self.limit = limit
        self.spent: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __call__(self, cursor, row):
        spent = self.spent.get(cursor, 0) + sum(_cost(v) for v in row)
        if spent > self.limit:
            self.spent.pop(cursor, None)
            # Ends the statement now: a statement left half-read (until the garbage collector frees this cursor)
            # would keep an interrupt of its connection (plugins/civcas_deadline.py) in force for later queries.
            cursor.close()
            # OperationalError is what Datasette's views turn into a 400 with the message shown.
            raise sqlite3.OperationalError(TOO_LARGE)
        self.spent[cursor] = spent
        return sqlite3.Row(cursor, row)


# A printf conversion: flags, width, precision, SQLite's size prefixes, the conversion character.
CONVERSION = re.compile(r"%([-+ 0#!,]*)(\*|\d*)(?:\.(\*|\d*))?(?:ll|l)?(.)", re.S)


def repeats_too_often(fmt: str, args: tuple, as_int) -> bool:
    """Whether a `%c` of this printf would repeat its character more than MAX_VALUE_BYTES times (`as_int` reads
    a `*` argument as SQLite's printf does)."""
    if "c" not in fmt:
        return False
    arg = 0
    for _, width, precision, kind in CONVERSION.findall(fmt):
        if kind == "%":
            continue
        arg += width == "*"
        if precision == "*":
            precision = as_int(args[arg]) if arg < len(args) else 0
            arg += 1
        if kind == "c" and int(precision or 0) > MAX_VALUE_BYTES:
            return True
        arg += 1
    return False


def guard_functions(conn) -> None:
    own = sqlite3.connect(":memory:", check_same_thread=False)  # SQLite's own functions, for this connection
    own.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)

    def sqlite(name: str, args: tuple):
        return own.execute(f"select {name}({', '.join('?' * len(args))})", args).fetchone()[0]

    def as_int(value) -> int:
        # text such as ' 1000000000x' or a blob of digits is a number to SQLite: let it say which
        return value if isinstance(value, int) else int(sqlite("printf", ("%d", value)))

    def printf(*args):
        if not args:
            return None
        fmt = args[0].decode("utf-8", "replace") if isinstance(args[0], bytes) else args[0]
        if isinstance(fmt, str) and repeats_too_often(fmt, args[1:], as_int):
            return None  # what SQLite returns too, 6-7 s later
        return sqlite("printf", args)

    def instr(text, pattern):
        if isinstance(text, (str, bytes)) and isinstance(pattern, type(text)):
            return text.find(pattern) + 1  # characters of text, bytes of blobs: as SQLite counts them
        return sqlite("instr", (text, pattern))

    def replace(text, pattern, replacement):
        if isinstance(text, str) and isinstance(pattern, str) and isinstance(replacement, str):
            return text.replace(pattern, replacement) if pattern else text
        return sqlite("replace", (text, pattern, replacement))

    def trimmer(name: str, left: bool, right: bool):
        def trim(text, characters):
            if not (isinstance(text, str) and isinstance(characters, str)):
                return sqlite(name, (text, characters))
            drop, start, end = set(characters), 0, len(text)
            while left and start < end and text[start] in drop:
                start += 1
            while right and end > start and text[end - 1] in drop:
                end -= 1
            return text[start:end]
        return trim

    for name in ("printf", "format"):
        conn.create_function(name, -1, printf, deterministic=True)
    for name, left, right in (("trim", True, True), ("ltrim", True, False), ("rtrim", False, True)):
        conn.create_function(name, 2, trimmer(name, left, right), deterministic=True)
    conn.create_function("instr", 2, instr, deterministic=True)
    conn.create_function("replace", 3, replace, deterministic=True)


def limit_connection(conn) -> None:
    if hasattr(conn, "setlimit"):  # Python 3.11+
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_PATTERN_BYTES)
    conn.row_factory = ResultBudget()
    conn.execute(f"PRAGMA hard_heap_limit = {HARD_HEAP_LIMIT}")
    guard_functions(conn)


@hookimpl
def prepare_connection(conn):
    limit_connection(conn)


# --- CSV errors (and the optional byte-order mark) --------------------------------------------------
# Datasette 0.65.5 answers a failed SQL query in CSV with "200 OK" and an empty body ("\r\n": a
# header row with no columns), so a script downloading CSV cannot tell a refused query from an empty
# result. Every successful query has at least one column, so a CSV whose whole body is that empty
# header row can only be an error: answer 400 instead, pointing to the JSON, which says why.
CSV_ERROR = (b"This query failed, so there is no CSV to return. The same address with .json in place of .csv "
             b"gives the error message.\n")


def csv_errors_as_400(app):
    async def wrapped(scope, receive, send):
        if scope.get("type") != "http" or not scope.get("path", "").endswith(".csv"):
            return await app(scope, receive, send)
        held = {}
        # ?_bom=1: start the CSV with a UTF-8 byte-order mark, so that Excel opens Arabic text intact.
        bom = b"_bom=1" in scope.get("query_string", b"").split(b"&")

        async def guarded_send(message):
            if message["type"] == "http.response.start" and message.get("status") == 200:
                held["start"], held["body"] = message, b""  # commit to 200 only once a column is seen
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if held["body"].strip() == b"":
                    if message.get("more_body"):
                        return
                    held.clear()
                    await send({"type": "http.response.start", "status": 400,
                                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                    await send({"type": "http.response.body", "body": CSV_ERROR})
                    return
                start, body = held.pop("start"), held.pop("body")
                if bom:
                    body = b"\xef\xbb\xbf" + body
                    start = {**start, "headers": [(k, v) for k, v in start.get("headers", [])
                                                  if k.lower() != b"content-length"]}
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": message.get("more_body", False)})
                return
            await send(message)

        await app(scope, receive, guarded_send)
    return wrapped


@hookimpl
def asgi_wrapper(datasette):
    return csv_errors_as_400
