"""Every query ends near its time limit, even one made of slow function calls.

Datasette 0.65.5 enforces sql_time_limit_ms with SQLite's progress handler, called every 1,000 virtual-machine
instructions (datasette.utils.sqlite_timelimit). An instruction is usually a fraction of a microsecond, but one
function call is one instruction: `x like y` on a value of 1,000,000 characters takes ~0.3 s with the longest
pattern civcas allows (plugins/civcas_limits.py). Two ways around the limit, two bounds:

* A loop of such calls (one per row): the handler saw a call only every few hundred rows, and a query of 30
  rows ran 14 s under a 2 s limit. This plugin wraps Datasette's `sqlite_timelimit` (the one place Datasette
  starts a query's clock) so that each query also has a deadline on a single watchdog thread: at the limit plus
  GRACE_SECONDS the watchdog calls `sqlite3_interrupt()` on the query's connection (the one SQLite call made to
  be called from another thread). SQLite stops at the next row with "interrupted", which Datasette answers as
  "SQL query took too long" (a 400), as when its own handler ends a query: 2.1 s for those 30 rows. A query
  that ends in time cancels its deadline, so the next query on the connection is never interrupted by it.
* Calls in one expression (`(x like y) + (x like y) + ...`): SQLite checks for an interrupt only where a loop
  turns, so nothing can stop a row half-way; twenty calls ran 12 s. A statement may name at most
  MAX_PATTERN_CALLS LIKE or GLOB operators: SQLite's authorizer sees each function a statement names when it
  is prepared, and one more is refused ("not authorized", a 400). With each call bounded, a query then ends at
  most ~2.5 s after its limit.

What neither can stop is one call in the middle: single calls that could run for seconds are bounded in
plugins/civcas_limits.py.
"""
from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import sqlite3
import threading
import time

import datasette.database as datasette_database
from datasette import hookimpl

# After the time limit, how long Datasette's own handler has to end the query before the watchdog does.
GRACE_SECONDS = 0.05
# LIKE and GLOB operators one statement may name (a table page's filters name one each).
MAX_PATTERN_CALLS = 8
PATTERN_FUNCTIONS = {"like", "glob"}
# connection -> LIKE/GLOB operators named by its query under way (only while one is; Datasette's own look-ups
# are not counted)
named_calls: dict = {}


def authorizer(conn):
    def authorize(action, arg1, arg2, database, source):
        if action == sqlite3.SQLITE_FUNCTION and arg2 and arg2.lower() in PATTERN_FUNCTIONS and conn in named_calls:
            named_calls[conn] += 1
            if named_calls[conn] > MAX_PATTERN_CALLS:
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    return authorize


@hookimpl
def prepare_connection(conn):
    conn.set_authorizer(authorizer(conn))


class Watchdog:
    def __init__(self):
        self.heap: list[tuple[float, int, object]] = []  # (deadline, id, connection)
        self.live: dict[int, object] = {}
        self.ids = itertools.count()
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None

    def arm(self, conn, seconds: float) -> int:
        ticket = next(self.ids)
        with self.wake:
            self.live[ticket] = conn
            heapq.heappush(self.heap, (time.monotonic() + seconds, ticket, conn))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="civcas-deadline", daemon=True)
                self.thread.start()
            if self.heap[0][1] == ticket:
                self.wake.notify()  # the earliest deadline now; otherwise the watchdog wakes before it anyway
        return ticket

    def disarm(self, ticket: int) -> bool:
        """False if the deadline had passed and the connection was interrupted."""
        with self.wake:
            return self.live.pop(ticket, None) is not None

    def run(self) -> None:
        with self.wake:
            while True:
                while self.heap and self.heap[0][1] not in self.live:
                    heapq.heappop(self.heap)  # ended in time
                if not self.heap:
                    self.wake.wait()
                    continue
                deadline, ticket, conn = self.heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self.wake.wait(wait)
                    continue
                heapq.heappop(self.heap)
                del self.live[ticket]
                # Not disarmed: still running past its deadline, or finishing just now (its wrapper then finds the
                # deadline gone and clears the interrupt, see clear_interrupt).
                conn.interrupt()


WATCHDOG = Watchdog()
datasettes_own = datasette_database.sqlite_timelimit


@contextlib.contextmanager
def sqlite_timelimit(conn, ms):
    named_calls[conn] = 0  # a new query: Datasette runs one statement in each
    ticket = WATCHDOG.arm(conn, ms / 1000 + GRACE_SECONDS)
    try:
        with datasettes_own(conn, ms):
            yield
    finally:
        if not WATCHDOG.disarm(ticket):
            clear_interrupt(conn)
        named_calls.pop(conn, None)


def clear_interrupt(conn) -> None:
    """SQLite keeps an interrupt in force until no statement of the connection is running: one left half-read
    by an earlier query (its cursor not yet freed) would fail every later query on the connection."""
    for _ in range(2):
        try:
            conn.execute("select 1").fetchall()
            return
        except sqlite3.OperationalError:
            gc.collect()  # frees such cursors, which ends their statements


@hookimpl
def startup(datasette):
    # Datasette's Database.execute looks the name up in its module on each query.
    if datasette_database.sqlite_timelimit is datasettes_own:
        datasette_database.sqlite_timelimit = sqlite_timelimit
