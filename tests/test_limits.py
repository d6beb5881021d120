"""One request may not exhaust the server's memory (issue: `select zeroblob(1000000000)` killed it).

Every URL below is sent to a real server started by scripts/serve.sh, through the JSON, CSV and HTML
renderers. Each must end in a clean 4xx (no traceback, no 500) with the server's memory flat, and
the server must keep answering afterwards.
"""
from __future__ import annotations

import sqlite3
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import PLUGINS, http_get, plugin_file, production_settings

limits = plugin_file("civcas_limits")
deadline = plugin_file("civcas_deadline")

# The attack and its relatives: one huge value, many large values, huge intermediates.
HUGE_SQL = [
    "select zeroblob(1000000000)",
    "select randomblob(1000000000)",
    "select zeroblob(2000000)",
    "select hex(zeroblob(600000))",
    "select replace(hex(zeroblob(400000)), '0', '00')",
    "select replace(hex(randomblob(490000)), '0', '0000')",
    "select randomblob(900000) from figures a, figures b",
    "select zeroblob(900000), zeroblob(900000) from figures",
    "select json_group_array(randomblob(100000)) from figures a, figures b",
    "with recursive r(s) as (select 'x' union all select s || s from r) select length(s) from r",
]
# These run into the 2 s time limit rather than a size limit: each costs 2 s of a core, so each kind of query is
# sent once (as JSON), and one of them through every renderer (CSV's once let the time-out through as a 500): how
# a renderer answers a time-out does not depend on the query that timed out.
SLOW_SQL = [
    "select length(group_concat(randomblob(500000))) from figures a, figures b",
    "select count(*) from (select randomblob(500000) x from figures a, figures b order by x)",
    "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r",
]
# Joins that would run for hours: the time limit ends them too.
HUGE_JOINS = [
    "select count(*) from figures a, figures b, figures c, figures d",
    "select * from figures a, figures b, figures c order by random()",
]
RENDERERS = ["json", "csv", "html"]
CASES = [(sql, r) for sql in HUGE_SQL for r in RENDERERS]
TIMED_CASES = ([("select group_concat(a.quote) from figures a, figures b, figures c", r) for r in RENDERERS]
               + [(sql, "json") for sql in SLOW_SQL + HUGE_JOINS])


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def get(url: str) -> tuple[int, bytes]:
    status, _, body = http_get(url)
    return status, body


def query_url(base: str, sql: str, renderer: str) -> str:
    ext = "" if renderer == "html" else "." + renderer
    return f"{base}/civcas{ext}?sql={quote(sql)}"


@pytest.fixture(scope="module")
def server_pid(served):
    return served[1]


@pytest.mark.parametrize("sql, renderer", CASES)
def test_huge_results_end_in_a_clean_4xx_with_memory_flat(server, server_pid, sql, renderer):
    before = vm_rss_mb(server_pid)
    status, body = get(query_url(server, sql, renderer))
    after = vm_rss_mb(server_pid)
    assert 400 <= status < 500, (status, body[:300])
    assert b"Traceback" not in body
    assert len(body) < 100_000
    assert after - before < 150, f"server memory grew {before:.0f} -> {after:.0f} MB"
    # ...and the server still answers.
    status, _ = get(f"{server}/civcas.json?sql=select+1")
    assert status == 200


def test_queries_past_the_time_limit_end_in_a_clean_4xx_with_memory_flat(server, server_pid):
    """Every query that only the 2 s time limit stops, through each renderer it is sent to. They are sent together,
    as many at once as the server has SQL threads (num_sql_threads): each still runs until the production time limit
    ends it, and the whole batch may not grow the server's memory more than one such request alone may."""
    from concurrent.futures import ThreadPoolExecutor

    threads = production_settings()["num_sql_threads"]
    before = vm_rss_mb(server_pid)
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(lambda case: get(query_url(server, *case)), TIMED_CASES))
    after = vm_rss_mb(server_pid)
    for (sql, renderer), (status, body) in zip(TIMED_CASES, answers):
        assert 400 <= status < 500, (sql, renderer, status, body[:300])
        assert b"Traceback" not in body, (sql, renderer)
        assert len(body) < 100_000, (sql, renderer)
    assert after - before < 150, f"server memory grew {before:.0f} -> {after:.0f} MB"
    # ...and the server still answers.
    assert get(f"{server}/civcas.json?sql=select+1")[0] == 200


# Formats that make SQLite 3.40's printf repeat a character a billion times: 6-7 s of CPU in one function call,
# which the time limit cannot interrupt (plugins/civcas_limits.py answers NULL at once).
REPEATING = ["printf('%.*c', 1000000000, 'x')", "format('%.*c', 1000000000, 'x')", "printf('%.1000000000c', 'x')",
             "printf('%d %!.*c', 1, 1000000000, 'x')", "printf('%.*c', ' 1000000000 ', 'x')",
             "printf(x'252e2a63', 1000000000, 'x')", "printf('%.*c', x'31303030303030303030', 'x')"]
# SQLite's instr() and replace() compare the pattern at every position: 4 s for one call on these values.
A_LOT, PATTERN = "replace(hex(zeroblob(499999)), '0', 'a')", "replace(hex(zeroblob(100000)), '0', 'a') || 'b'"
SEARCHING = [f"instr({A_LOT}, {PATTERN})", f"length(replace({A_LOT}, {PATTERN}, 'x'))"]
# ...and trim() compares each character with every one of the set: 10 s for one call on these.
SET = "replace(hex(zeroblob(20000)), '0', 'b') || 'a'"
TRIMMING = [f"length(trim({A_LOT.replace('499999', '20000')} || 'c', {SET}))",
            f"length(rtrim('c' || {A_LOT.replace('499999', '20000')}, {SET}))"]
# Calls whose answers must stay SQLite's own.
ORDINARY = [
    "printf('%d|%5.2f|%-8s|%c', 5, 3.14159, 'ab', 'xyz')", "printf('%.*c', 3, 'x')", "printf('%.3c', 'q')",
    "printf('%q %Q %w', 'it''s', NULL, 'a\"b')", "printf(NULL)", "printf('%s')", "printf('%%c %.*c', 4, 'z')",
    "format('%,d', 1234567)", "printf('%!.2c', 'é')", "printf('%*.*c', 5, 2, 'r')", "printf('%.*c', 'abc', 'x')",
    "printf(12, 3)", "printf('%lld %lli', 1, 2)", "printf('%.*c', x'31303030', 'x')", "printf('%.*c', -5, 'x')",
    "printf('%.*c', 1000000, 'x')", "printf('%.*c')", "printf('%c', 65)",
    "instr('abcdé', 'é')", "instr(12345, 34)", "instr(NULL, 'a')", "instr('a', '')", "instr('', '')", "instr(x'', x'')",
    "instr(x'616263', x'63')", "instr('abc', x'63')", "instr(cast('aé' || 'b' as blob), x'62')", "instr('aéb', 'b')",
    "replace('abc', '', 'x')", "replace(NULL, 'a', 'b')", "replace('aaa', 'a', NULL)", "replace(123, 2, 9)",
    "replace('', '', '')", "replace('aaaa', 'aa', 'b')", "replace('aéa', 'a', 'é')", "replace(x'616263', 'b', 'x')",
    "trim('  abc  ', ' ')", "ltrim('xxabcxx', 'x')", "rtrim('xxabcxx', 'x')", "trim('aé', 'é')", "trim(NULL, 'a')",
    "trim('abc', NULL)", "trim('abc', '')", "trim(123, 3)", "trim('', 'a')", "trim('aaa', 'a')", "rtrim(x'616263', 'c')",
] + [call.replace("499999", "50000").replace("100000", "1000") for call in SEARCHING] + [  # the same, less work
    call.replace("20000", "200") for call in TRIMMING]


@pytest.mark.parametrize("call", SEARCHING + TRIMMING + REPEATING[:1])
def test_one_function_call_cannot_outlast_the_time_limit(server, call):
    started = time.monotonic()
    status, body = get(query_url(server, f"select {call} as v", "json") + "&_shape=array")
    assert time.monotonic() - started < production_settings()["sql_time_limit_ms"] / 1000
    assert status == 200, body[:300]


def slow_like_sql(select: str) -> str:
    """`x like y` takes ~0.3 s for SQLite here: the longest pattern allowed, on 980,000 characters."""
    longest = limits.MAX_PATTERN_BYTES - 2
    return (f"with recursive r(i) as (select 1 union all select i + 1 from r where i < 30), "
            f"t(x, y) as (select {A_LOT.replace('499999', '490000')}, "
            f"'%' || replace(hex(zeroblob({longest // 2})), '0', 'a') || 'b') {select}")


def test_a_loop_of_slow_calls_ends_at_the_time_limit(server):
    """plugins/civcas_deadline.py: Datasette checks its time limit every 1,000 instructions, a few hundred rows
    of this query (30 rows ran 14 s); the watchdog interrupts it at the next row past the limit, and the server
    answers as for any time-out."""
    limit = production_settings()["sql_time_limit_ms"] / 1000
    started = time.monotonic()
    status, body = get(query_url(server, slow_like_sql("select count(*) from t, r where (x || i) like y"), "json"))
    assert time.monotonic() - started < limit + 1.0  # the limit, the call under way, the answer
    assert status == 400 and b"SQL query took too long" in body, body[:300]
    assert get(query_url(server, "select 1", "json"))[0] == 200


def test_a_statement_may_name_only_so_many_like_operators(server):
    """Nothing stops a row half-way, so one statement may name at most MAX_PATTERN_CALLS LIKE/GLOB operators."""
    calls = " + ".join(["(x like y)"] * (deadline.MAX_PATTERN_CALLS + 1))
    status, body = get(query_url(server, slow_like_sql(f"select {calls} as n from t"), "json"))
    assert status == 400 and b"not authorized" in body, body[:300]
    status, body = get(query_url(server, "select 1 where 'a' like 'a' and 'b' glob 'b'", "json"))
    assert status == 200, body[:300]
    # Datasette's table filters: one LIKE each.
    status, _ = get(f"{server}/civcas/incidents.json?title__contains=a&summary__contains=e&place__contains=a")
    assert status == 200


def test_a_like_pattern_longer_than_the_limit_is_refused(server):
    too_long = "x" * (limits.MAX_PATTERN_BYTES + 1)
    status, body = get(query_url(server, f"select 'a' like '{too_long}'", "json"))
    assert status == 400 and b"pattern too complex" in body, body[:300]
    status, _ = get(f"{server}/civcas/incidents.json?title__contains=" + "x" * (limits.MAX_PATTERN_BYTES - 2))
    assert status == 200


@pytest.mark.parametrize("renderer", RENDERERS)
def test_printf_cannot_build_a_huge_string(server, server_pid, renderer):
    # SQLite 3.40's printf() returns NULL when its result would pass the length limit (newer SQLite
    # raises "string or blob too big", a 400): either way no large value is built or sent, and the
    # answer comes within the time limit, not after SQLite has spent seconds building it.
    sql = "select printf('%.*c', 1000000000, 'x') as s"
    before = vm_rss_mb(server_pid)
    started = time.monotonic()
    status, body = get(query_url(server, sql, renderer) + ("&_shape=array" if renderer == "json" else ""))
    assert time.monotonic() - started < production_settings()["sql_time_limit_ms"] / 1000
    assert vm_rss_mb(server_pid) - before < 150
    assert status == 400 or (status == 200 and len(body) < 100_000), (status, body[:300])
    if status == 200 and renderer == "json":
        assert body.strip() == b'[{"s": null}]'


def test_guarded_functions_answer_as_sqlites_own():
    """plugins/civcas_limits.py replaces printf, format, instr and replace: the same answers as SQLite's."""
    guarded, plain = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    limits.limit_connection(guarded)
    plain.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.MAX_VALUE_BYTES)
    for call in ORDINARY:
        assert tuple(guarded.execute("select " + call).fetchone()) == plain.execute("select " + call).fetchone(), call
    for call in REPEATING:
        assert tuple(guarded.execute("select " + call).fetchone()) == (None,), call
    assert [guarded.execute("select " + call).fetchone()[0] for call in SEARCHING] == [0, 999_998]
    assert [guarded.execute("select " + call).fetchone()[0] for call in TRIMMING] == [1, 1]
    assert limits.repeats_too_often("%.*c", (limits.MAX_VALUE_BYTES + 1, "x"), int)
    assert not limits.repeats_too_often("%.*s %c", (limits.MAX_VALUE_BYTES + 1, "x", "y"), int)


@pytest.mark.parametrize("path", [
    "/civcas/figures.json?_where=" + quote("length(zeroblob(2000000)) > 0"),
    "/civcas/figures?_where=" + quote("length(zeroblob(2000000)) > 0"),
    "/civcas/figures.csv?_stream=1&_where=" + quote("length(zeroblob(2000000)) > 0"),
    "/civcas/incidents.json?_search=" + quote("x" * 5000),
])
def test_table_pages_refuse_huge_values_with_a_400(server, path):
    status, body = get(server + path)
    assert 400 <= status < 500 or status == 200, (status, body[:300])
    assert status != 500 and b"Traceback" not in body


def test_a_failed_query_is_not_an_empty_csv(server):
    status, body = get(query_url(server, "select zeroblob(1000000000)", "csv"))
    assert status == 400 and b".json" in body
    # An empty result is still a 200 with its header row.
    status, body = get(query_url(server, "select 1 as one where 0", "csv"))
    assert status == 200 and body.strip() == b"one"


def test_real_queries_fit_the_budget(server):
    for path in ["/civcas/figures.json?_size=max", "/civcas/figures.csv?_stream=1", "/civcas/incidents?_size=max",
                 "/civcas/sources.json?_size=max&_shape=array"]:
        status, body = get(server + path)
        assert status == 200, (path, body[:300])


def test_length_limit_is_far_above_the_longest_real_value(built_db):
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    longest = 0
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' and sql not like '%VIRTUAL%'")]
    for table in tables:
        for column in [r[1] for r in conn.execute(f'pragma table_info("{table}")')]:
            n = conn.execute(f'select max(length(cast("{column}" as blob))) from "{table}"').fetchone()[0] or 0
            longest = max(longest, n)
    assert 0 < longest * 10 < limits.MAX_VALUE_BYTES


def test_the_documented_deployment_sets_a_memory_ceiling():
    serve = (PLUGINS.parent / "scripts" / "serve.sh").read_text()
    assert "ulimit -v" in serve
    readme = (PLUGINS.parent / "README.md").read_text()
    assert "--memory 1Gi" in readme


# The huge joins (HUGE_JOINS) take the full 2 s time limit: the test above sends them with the other slow queries.
@pytest.mark.parametrize("sql", [
    "select load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')",
    "attach database ':memory:' as other",
    "pragma writable_schema = 1",
    "insert into actors (actor_id) values ('x')",
])
def test_extensions_and_writes_end_in_a_clean_4xx(server, server_pid, sql):
    before = vm_rss_mb(server_pid)
    for renderer in RENDERERS:
        status, body = get(query_url(server, sql, renderer))
        assert 400 <= status < 500, (sql, renderer, status, body[:300])
        assert b"Traceback" not in body
    assert vm_rss_mb(server_pid) - before < 150
    assert get(f"{server}/civcas.json?sql=select+1")[0] == 200


@pytest.fixture(scope="module")
def big_site(synthetic_served):
    """A generated database of 10,000 incidents and 30,000 figures (44 MB), served as in production."""
    return synthetic_served


def stream(url: str) -> int:
    total = 0
    with urllib.request.urlopen(url, timeout=120) as r:
        while chunk := r.read(1 << 16):
            total += len(chunk)
    return total


def test_csv_stream_and_database_download_keep_memory_flat(big_site):
    base, pid = big_site
    get(f"{base}/civcas/figures.json?_size=1")  # warm up
    before = vm_rss_mb(pid)
    peak = before
    size = stream(f"{base}/civcas/figures.csv?_stream=1&_size=max")
    peak = max(peak, vm_rss_mb(pid))
    assert size > 5_000_000  # the whole table came through
    size = stream(f"{base}/civcas.db")
    peak = max(peak, vm_rss_mb(pid))
    assert size > 10_000_000
    assert peak - before < 150, f"server memory grew {before:.0f} -> {peak:.0f} MB"


def test_csv_can_start_with_a_byte_order_mark_for_excel(server):
    status, body = get(f"{server}/civcas/places.csv?_bom=1&_size=max")
    assert status == 200 and body.startswith(b"\xef\xbb\xbf" + b"place_id,")
    assert "الهيشة".encode() in body
    status, body = get(f"{server}/civcas/places.csv?_size=max")
    assert status == 200 and body.startswith(b"place_id,")
    status, body = get(f"{server}/civcas/places.csv?_bom=1&_stream=1")
    assert status == 200 and body.startswith(b"\xef\xbb\xbf" + b"place_id,")


def test_an_interrupted_connection_serves_the_next_query():
    """SQLite keeps an interrupt in force while any statement of the connection is running; a statement left
    half-read by an earlier query (its cursor waiting for the garbage collector) would then fail every later
    query on that connection. The watchdog's query wrapper clears it."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    limits.limit_connection(conn)

    class Lost:  # an unreachable cycle holding a half-read cursor, as a failed query's traceback leaves one
        pass
    lost = Lost()
    lost.me, lost.cursor = lost, conn.execute("select 1 union all select 2")
    lost.cursor.fetchone()
    del lost
    slow = slow_like_sql("select count(*) from t, r where (x || i) like y")
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        with deadline.sqlite_timelimit(conn, 100):
            conn.execute(slow).fetchall()
    assert conn.execute("select 1").fetchone()[0] == 1
