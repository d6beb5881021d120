"""Getting a whole table with pandas, from the real production server (scripts/serve.sh).

Every table (and view) the site lists reads whole three ways, as README.md "Getting a whole table" shows:
the streamed CSV (`?_stream=1&_size=max`), the JSON pages followed through `next_url`, and `_shape=array`
pages followed through the `Link: <...>; rel="next"` header. Row counts and contents equal the database's, and
with the dtypes the data dictionary promises (INTEGER -> nullable integer, REAL -> float, TEXT -> string)
pandas reads every value without loss.
"""
from __future__ import annotations

import io
import json
import re
import sqlite3
import urllib.request

import pytest

pd = pytest.importorskip("pandas")

DTYPES = {"INTEGER": "Int64", "REAL": "float64", "TEXT": "string"}


def get(url: str):
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.status == 200, url
        return response.read(), response.headers


def get_json(url: str):
    body, headers = get(url)
    return json.loads(body), headers


@pytest.fixture(scope="module")
def listing(server):
    """The site's own list of tables and views (hidden FTS tables left out), as a user finds them."""
    database, _ = get_json(f"{server}/civcas.json")
    tables = [t["name"] for t in database["tables"] if not t["hidden"]]
    views = [v["name"] for v in database["views"]]
    return tables, views


@pytest.fixture(scope="module")
def dictionary(server):
    """{table: {column: SQLite type}} from the site's data_dictionary table: what the site promises."""
    rows, _ = get_json(f"{server}/civcas/data_dictionary.json?_shape=array&_size=max")
    promised: dict[str, dict[str, str]] = {}
    for row in rows:
        promised.setdefault(row["table_name"], {})[row["column_name"]] = row["sql_type"]
    return promised


def dtypes_for(dictionary, table):
    return {column: DTYPES[sql_type] for column, sql_type in dictionary.get(table, {}).items()}


def database_frame(built_db, table, dtypes):
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    try:
        frame = pd.read_sql_query(f'SELECT * FROM "{table}"', conn)
    finally:
        conn.close()
    return frame.astype(dtypes)


def read_csv_whole(server, table, dtypes):
    # keep_default_na=False: only an empty cell is NULL; a name such as "NA" or "None" stays text.
    return pd.read_csv(f"{server}/civcas/{table}.csv?_stream=1&_size=max", dtype=dtypes,
                       keep_default_na=False, na_values=[""])


def read_json_pages(server, table, size="max"):
    """Default JSON shape: follow next_url until it is null."""
    url = f"{server}/civcas/{table}.json?_size={size}"
    columns, rows, pages = None, [], 0
    while url:
        page, _ = get_json(url)
        columns = page["columns"]
        rows += page["rows"]
        url = page["next_url"]
        pages += 1
    return pd.DataFrame(rows, columns=columns), rows, pages


NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


def read_array_pages(server, table, size="max"):
    """_shape=array: a plain list per page; the next page is in the Link header."""
    url = f"{server}/civcas/{table}.json?_shape=array&_size={size}"
    rows, pages = [], 0
    while url:
        page, headers = get_json(url)
        rows += page
        match = NEXT_LINK.search(headers.get("Link", ""))
        url = match.group(1) if match else None
        pages += 1
    return pd.DataFrame(rows), pages


def same_rows(got, expected, key):
    got = got[list(expected.columns)].sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=True)


def test_the_site_lists_every_table_of_the_data_dictionary(listing, dictionary):
    tables, views = listing
    assert set(tables) == set(dictionary)
    assert views, "the site lists no views"


def test_every_table_reads_whole_from_the_streamed_csv(server, built_db, listing, dictionary):
    tables, _ = listing
    for table in tables:
        dtypes = dtypes_for(dictionary, table)
        frame = read_csv_whole(server, table, dtypes)
        expected = database_frame(built_db, table, dtypes)
        assert len(frame) == len(expected), table
        assert list(frame.columns) == list(expected.columns), table
        for column, sql_type in dictionary[table].items():
            check_promised_dtype(frame[column], sql_type, f"{table}.{column}")
        same_rows(frame, expected, list(expected.columns[:1]))


def check_promised_dtype(series, sql_type, name):
    if sql_type == "INTEGER":
        assert pd.api.types.is_integer_dtype(series.dtype), (name, series.dtype)
    elif sql_type == "REAL":
        assert pd.api.types.is_float_dtype(series.dtype), (name, series.dtype)
    else:
        assert pd.api.types.is_string_dtype(series.dtype) or series.dtype == object, (name, series.dtype)


@pytest.mark.parametrize("size", ["max", "100"])
def test_every_table_reads_whole_from_json_pages(server, built_db, listing, dictionary, size):
    """With _size=max every table here fits one page (max_returned_rows is 2000); _size=100 makes the loop
    follow several pages, as it must for a table that grows past the limit."""
    tables, _ = listing
    followed = 0
    for table in tables:
        dtypes = dtypes_for(dictionary, table)
        raw_frame, rows, pages = read_json_pages(server, table, size)
        followed = max(followed, pages)
        expected = database_frame(built_db, table, dtypes)
        assert len(raw_frame) == len(expected), table
        # The values themselves have the promised JSON types: int for INTEGER, float for REAL, str for TEXT.
        python_types = {"INTEGER": int, "REAL": float, "TEXT": str}
        for i, column in enumerate(raw_frame.columns):
            wanted = python_types[dictionary[table][column]]
            wrong = [row[i] for row in rows if row[i] is not None and type(row[i]) is not wanted]
            assert not wrong, (table, column, wrong[:3])
        frame = raw_frame.astype(dtypes)  # raises on an integer column holding 1.5 or "12"
        for column, sql_type in dictionary[table].items():
            check_promised_dtype(frame[column], sql_type, f"{table}.{column}")
        same_rows(frame, expected, list(expected.columns[:1]))
    if size == "100":
        assert followed > 1, "no table needed a second page: the next_url loop was not exercised"


@pytest.mark.parametrize("size", ["max", "100"])
def test_every_table_and_view_reads_whole_from_array_pages(server, built_db, listing, dictionary, size):
    tables, views = listing
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    try:
        for name in tables + views:
            frame, pages = read_array_pages(server, name, size)
            (count,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            assert len(frame) == count, name
            if name in dictionary:
                expected = database_frame(built_db, name, dtypes_for(dictionary, name))
                same_rows(frame.astype(dtypes_for(dictionary, name)), expected, list(expected.columns[:1]))
            if size == "100":
                assert pages == max(1, -(-count // 100)), (name, pages, count)
    finally:
        conn.close()


def test_every_view_reads_whole_from_the_streamed_csv(server, built_db, listing):
    _, views = listing
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    try:
        for view in views:
            body, headers = get(f"{server}/civcas/{view}.csv?_stream=1&_size=max")
            frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""])
            (count,) = conn.execute(f'SELECT count(*) FROM "{view}"').fetchone()
            assert len(frame) == count, view
            columns = [d[0] for d in conn.execute(f'SELECT * FROM "{view}" LIMIT 0').description]
            assert list(frame.columns) == columns, view
    finally:
        conn.close()


def test_the_readme_recipes_read_a_whole_table(server, built_db):
    """The Python in README.md "Getting a whole table" runs as written against the real server."""
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Getting a whole table\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert len(blocks) == 2, "expected the JSON and CSV recipes"
    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    (count,) = conn.execute("SELECT count(*) FROM figures").fetchone()
    conn.close()
    namespace: dict = {}
    for block in blocks:
        assert "https://SITE" in block
        exec(block.replace("https://SITE", server), namespace)
        figures = namespace["figures"]
        assert len(figures) == count
    assert str(figures["value_min"].dtype) == "Int64" and str(figures["quote"].dtype) == "string"
