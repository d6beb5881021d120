"""Every canned query reads the large tables through an index, with and without its parameters.

EXPLAIN QUERY PLAN of each canned query in metadata.yml, run on the real built database with the parameters the
bench uses (bench/site.py: `samples`, `canned_queries`) and with every parameter empty. The tables that grow with
the data (incidents, figures, statements, sources, changes, places) may be read by SEARCH (an index lookup or
range), never by a full SCAN -- `SCAN t USING COVERING INDEX` of a whole table and a Bloom filter built over one
are full scans too -- with one exception: a scan that walks an index in the query's ORDER BY order (no temporary
B-tree sorting everything first) under a LIMIT stops after LIMIT rows. Such bounded scans are allowed only for the
queries listed in ORDERED_SCANS, each with why its filter keeps it short. What a query would aggregate over a
whole table it reads from a summary table the build computes (civcas/summaries.py), which it may scan.
docs/performance.md ("Site", 3-5) measured what the scans cost at 1,000,000 incidents.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from datasette.utils import escape_fts

from bench.site import canned_queries, samples
from conftest import metadata_yml

ROOT = Path(__file__).resolve().parent.parent
QUERIES = metadata_yml()["databases"]["civcas"]["queries"]
LARGE = ("incidents", "figures", "statements", "sources", "changes", "places")

# query -> why its index-ordered scan under a LIMIT ends early (its filter keeps most rows it walks).
ORDERED_SCANS = {
    "claims_for_incident": "nothing chosen: the first 100 claims in incident-id order, by the (incident_id, metric) index",
    "incidents_geojson": "the 100 newest geolocated incidents, by the date_start index",
    "children_and_women_killed": "the 100 newest incidents with children or women killed, by the date_start index",
    "single_source_figures": "the first 100 provisional figures (most figures are), by the (incident_id, metric) index",
    "headline_numbers": "the 100 incidents with the highest civilians_killed_max, by its index",
    "feed": "the 500 latest changes, by the changed_on index",
    "belligerent_statements": "the first 100 statements by a belligerent, by the (incident_id, said_on) index",
    "aggregate_tolls_by_claimant": "the first 100 aggregate figures, by the partial index on them",
    "discrepancy_list": "the first 100 corrections, by the (kind, subject) index",
}


def aliases(sql: str) -> dict[str, str]:
    """Name or alias as EXPLAIN QUERY PLAN shows it -> the large table it reads."""
    out = {t: t for t in LARGE}
    for table, alias in re.findall(r"\b(?:from|join)\s+(\w+)(?:\s+(?:as\s+)?(\w+))?", sql, flags=re.I):
        if table in LARGE and alias and alias.lower() not in {"on", "join", "where", "left", "inner", "cross", "using",
                                                               "group", "order", "limit", "indexed", "union"}:
            out[alias] = table
    return out


def full_scans(name: str, sql: str, params: dict, conn: sqlite3.Connection) -> list[str]:
    """The plan rows that read a large table from end to end (empty when the query is bounded)."""
    plan = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    names = aliases(sql)
    sorting = {parent for _, parent, _, detail in plan
               if re.match(r"USE TEMP B-TREE FOR (ORDER BY|GROUP BY|DISTINCT)", detail)}
    bad = []
    for node, parent, _, detail in plan:
        bloom = re.match(r"BLOOM FILTER ON (\w+)", detail)
        if bloom and bloom.group(1) in names:
            bad.append(detail)
            continue
        scan = re.match(r"SCAN (\w+)( USING (COVERING )?INDEX \w+)?$", detail)
        if not scan or scan.group(1) not in names:
            continue
        ordered = (name in ORDERED_SCANS and parent not in sorting and re.search(r"\blimit\s+\d+", sql, re.I)
                   and (scan.group(2) is None or scan.group(3) is None))
        if not ordered:
            bad.append(f"{detail} ({names[scan.group(1)]})")
    return bad


@pytest.fixture(scope="module")
def conn(built_db):
    c = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    c.create_function("escape_fts", 1, escape_fts)  # Datasette registers it too
    yield c
    c.close()


@pytest.fixture(scope="module")
def sample(built_db):
    return samples(built_db, "civilians")


CASES = [(name, given) for name, params in canned_queries("civcas").items() for given in ([False, True] if params else [False])]


@pytest.mark.parametrize("name, given", CASES, ids=[f"{n}-{'params' if g else 'default'}" for n, g in CASES])
def test_canned_query_reads_no_large_table_end_to_end(conn, sample, name, given):
    params = {p: (sample.get(p, "") if given else "") for p in canned_queries("civcas")[name]}
    assert not full_scans(name, QUERIES[name]["sql"], params, conn), (name, params)


def test_the_check_catches_the_scans_it_is_for(conn, sample):
    """The patterns docs/performance.md measured fail the check: `:p = '' or col = :p`, and a whole-table GROUP BY."""
    either = "select * from figures f where :incident = '' or f.incident_id = :incident"
    assert full_scans("claims_for_incident", either, {"incident": sample["incident"]}, conn)
    grouped = "select belligerent, count(*) from incidents i group by belligerent limit 100"
    assert full_scans("incidents_by_belligerent", grouped, {}, conn)
    sorted_all = "select * from figures order by value_min limit 100"
    assert full_scans("single_source_figures", sorted_all, {}, conn)


def test_single_source_figures_reads_the_claim_index_in_order_without_a_sort(conn):
    """Its ORDER BY is the claim index's whole key. A shorter one sorts each run of equal keys before the first row
    of the next, and the aggregate figures (no incident) are one run: ~60,000 rows at 1M, ~300 ms (bench,
    2026-12-01) for a query that reads 100."""
    plan = conn.execute("EXPLAIN QUERY PLAN " + QUERIES["single_source_figures"]["sql"]).fetchall()
    assert not [detail for *_, detail in plan if detail.startswith("USE TEMP B-TREE")], plan
