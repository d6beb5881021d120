"""What the big tables' unfiltered pages would count over a whole table on every request, counted once by the build.

Datasette computes a table page's facets (the value counts beside the rows) with a GROUP BY over every row the
page's filters select. On an unfiltered page of a large table that is the whole table on every request: ~1 s for
the six incident facets at 1,000,000 incidents (docs/performance.md, "Site" 1). The database is immutable, so the
build counts them once into `facet_counts`, and plugins/civcas_facets.py shows those counts on the unfiltered
pages (filtered pages facet their own, smaller, row sets as usual, or offer the facets as links).

FACETS names the columns counted for each table: the facets a reader sees on that table's first page.
"""
from __future__ import annotations

import sqlite3

# table -> the columns whose values are counted, in the order the page shows them.
FACETS: dict[str, tuple[str, ...]] = {
    "incidents": ("belligerent", "country", "year", "grading", "belligerent_assessment", "provisional"),
    "figures": ("metric", "claimant", "qualifier"),
    "sources": ("source_type", "publisher", "language"),
    "statements": ("statement_type", "speaker"),
    "places": ("country", "admin1", "geo_precision"),
}

# Values kept per column, most frequent first: a page shows the first `facet_size`, `_facet_size=max` all kept.
KEEP = 100


def _label_source(conn: sqlite3.Connection, table: str, column: str) -> tuple[str, str, str] | None:
    """(other table, its key, its label column) when `column` refers to a table with a label, else None."""
    from .schema import BY_NAME

    meta = BY_NAME.get(table)
    col = next((c for c in meta.columns if c.name == column), None) if meta else None
    if col is None or not col.references:
        return None
    other, key = col.references.split(".")
    target = BY_NAME.get(other)
    if target is None or not target.label_column:
        return None
    return other, key, target.label_column


def derive_page_data(conn: sqlite3.Connection) -> None:
    """Fill facet_counts: for every column in FACETS, its KEEP most frequent non-empty values with their counts
    (rank 1 = most frequent; ties by value), and one row of rank 0 and no value whose count is the number of
    distinct non-empty values. One GROUP BY per column."""
    conn.execute("DELETE FROM facet_counts")
    for table, columns in FACETS.items():
        for column in columns:
            groups = conn.execute(
                f'select "{column}", count(*) from "{table}" where "{column}" is not null and "{column}" != \'\' '
                f'group by "{column}"').fetchall()
            groups.sort(key=lambda g: (-g[1], str(g[0])))
            label = _label_source(conn, table, column)
            rows = [(f"{table}.{column}.0", table, column, 0, None, None, len(groups))]
            for rank, (value, count) in enumerate(groups[:KEEP], start=1):
                text = None
                if label:
                    other, key, label_column = label
                    found = conn.execute(f'select "{label_column}" from "{other}" where "{key}" = ?', (value,)).fetchone()
                    text = found[0] if found else None
                rows.append((f"{table}.{column}.{rank}", table, column, rank, value, text, count))
            conn.executemany("insert into facet_counts (id, table_name, column_name, rank, value, label, count) "
                             "values (?, ?, ?, ?, ?, ?, ?)", rows)
