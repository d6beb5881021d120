"""Columns of `incidents` the build derives, so that no number is typed twice.

Range rule (also in docs/data-dictionary.md), over the incident's current
claims (figures not superseded by a later figure of the same claimant):
  *_min = the lowest value_min among those claims for that metric
          (claims with no lower bound, 'up to N', are left out);
  *_max = the highest value_max among bounded claims, unless an open-ended
          claim ('at least N', 'more than N') reaches or passes it, in which
          case the upper bound is unknown and *_max is NULL. An open-ended
          claim never becomes a made-up number.
"""
from __future__ import annotations

import sqlite3

from .load import LoadedTable, attached, rows_to_copy
from .schema import CLAIM_INDEX, INCIDENTS, OPEN_ENDED, index_name
from .validate import quoted, typed_sql

RANGED_METRICS = ("civilians_killed", "civilians_injured", "children_killed", "women_killed")
PLACE_COLUMNS = [c for c in INCIDENTS.columns if c.derived and c.derived.startswith("places.")]
# The temporary tables' page cache while the incidents are copied, in KiB: room for the place columns the incidents
# take (~8 MB at 100,000 places) beside the pages of the facts read in order.
PLACES_CACHE_KIB = 16384


def copy_incidents(conn: sqlite3.Connection, loaded: LoadedTable, rejected: set[int], database: str) -> int:
    """The incidents' typed copy (civcas.load.copy_typed) with every derived column in the same write: the
    facts about each incident are computed in one grouped pass over its figures, statements and changes (loaded
    before it is copied), then each staged row is written once, whole. Returns the number of rows copied.

    The staged rows, less `rejected`, are copied under their staging rowids; a row whose id is already in the
    table is left out (and reported by civcas.load.report_duplicates).

    The copy reads the staged rows in file order, which is no order of their ids: every lookup by incident id or
    place id lands on a random page. So the facts are stored under the staged row they belong to (read in the same
    order as the copy), and the place columns the incidents take are copied into a small temporary table with a
    page cache that holds it whole, which the pages the copy writes cannot push out (at 1M incidents: 3.7M page
    reads became 0.2M, and the facts and copy took 23.6 s instead of 30.5 s; docs/performance.md)."""
    open_ended = ", ".join(f"'{q}'" for q in OPEN_ENDED)
    ranges = []
    for m in RANGED_METRICS:
        current = f"kind = 'figure' AND metric = '{m}' AND superseded_by IS NULL"
        ranges.append(f"min(value_min) FILTER (WHERE {current}) AS [{m}_lo], "
                      f"max(value_max) FILTER (WHERE {current} AND qualifier NOT IN ({open_ended})) AS [{m}_hi], "
                      f"max(value_min) FILTER (WHERE {current} AND qualifier IN ({open_ended})) AS [{m}_open]")
    # One stream of every row that says something about an incident (its figures, its statements, the changes to
    # it and to its figures and statements) and of the staged incidents themselves, grouped once. The tables are
    # read in storage order (NOT INDEXED) and sorted, rather than walked through an index that fetches each row
    # from a random place in a large file. Each incident's facts are then stored under its staged row, in the
    # order the copy reads them (the first of two rows with the same id: the one the copy keeps).
    create_facts = f"""
        CREATE TEMP TABLE incident_facts (
            staged_rowid INTEGER PRIMARY KEY,
            {", ".join(f"[{m}_{x}]" for m in RANGED_METRICS for x in ("lo", "hi", "open"))},
            sources INTEGER, claimants INTEGER, first TEXT, last TEXT)"""
    staged_id = typed_sql(INCIDENTS.column(INCIDENTS.pk))
    fill_facts = f"""
        INSERT INTO temp.incident_facts
        SELECT * FROM (
        SELECT min(staged_rowid) FILTER (WHERE kind = 'incident') AS staged_rowid, {", ".join(ranges)},
               count(DISTINCT source_id) AS sources,
               -- Independence is judged by claimant, and a claimant's spokesmen, relatives or branches (actors
               -- under it in the parent chain) are the same claimant: count distinct tops of the chain.
               count(DISTINCT top_id) AS claimants,
               -- first_published: the 'added' change (required by checks.check_changes); last_modified: the latest
               -- change to the incident itself or to one of its figures or statements.
               min(changed_on) FILTER (WHERE kind = 'added') AS first, max(changed_on) AS last
        FROM (
            SELECT f.incident_id, 'figure' AS kind, f.metric, f.value_min, f.value_max, f.qualifier, f.superseded_by,
                   f.source_id, a.top_id, NULL AS changed_on, NULL AS staged_rowid
            FROM figures f NOT INDEXED JOIN actors a ON a.actor_id = f.claimant WHERE f.incident_id IS NOT NULL
            UNION ALL
            SELECT incident_id, 'statement', NULL, NULL, NULL, NULL, NULL, source_id, NULL, NULL, NULL
            FROM statements NOT INDEXED WHERE incident_id IS NOT NULL
            UNION ALL
            SELECT row_id, CASE WHEN action = 'added' THEN 'added' ELSE 'change' END, NULL, NULL, NULL, NULL, NULL,
                   NULL, NULL, changed_on, NULL
            FROM changes WHERE table_name = 'incidents'
            UNION ALL
            SELECT f.incident_id, 'change', NULL, NULL, NULL, NULL, NULL, NULL, NULL, c.changed_on, NULL
            FROM changes c JOIN figures f ON f.figure_id = c.row_id
            WHERE c.table_name = 'figures' AND f.incident_id IS NOT NULL
            UNION ALL
            SELECT s.incident_id, 'change', NULL, NULL, NULL, NULL, NULL, NULL, NULL, c.changed_on, NULL
            FROM changes c JOIN statements s ON s.statement_id = c.row_id
            WHERE c.table_name = 'statements' AND s.incident_id IS NOT NULL
            UNION ALL
            SELECT {staged_id}, 'incident', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, rowid
            FROM stage.raw)
        GROUP BY incident_id)
        WHERE staged_rowid IS NOT NULL ORDER BY staged_rowid"""
    place_sources = sorted({c.derived.split(".")[1] for c in PLACE_COLUMNS} | {"latitude", "longitude"})
    create_places = f"""
        CREATE TEMP TABLE incident_places (place_id TEXT PRIMARY KEY, {", ".join(map(quoted, place_sources))})
        WITHOUT ROWID"""
    fill_places = f"""
        INSERT INTO temp.incident_places SELECT place_id, {", ".join(map(quoted, place_sources))} FROM places"""

    def upper(m: str) -> str:
        # An open-ended claim that reaches or passes the highest bounded claim leaves the maximum unknown.
        return f"CASE WHEN c.[{m}_open] IS NOT NULL AND (c.[{m}_hi] IS NULL OR c.[{m}_open] >= c.[{m}_hi]) THEN NULL ELSE c.[{m}_hi] END"
    values = {c.name: f"p.[{c.derived.split('.')[1]}]" for c in PLACE_COLUMNS}
    values["year"] = "CAST(substr(i.date_start, 1, 4) AS INTEGER)"
    for m in RANGED_METRICS:
        values[f"{m}_min"], values[f"{m}_max"] = f"c.[{m}_lo]", upper(m)
    values |= {
        "sources_count": "coalesce(c.sources, 0)",
        "claimants_count": "coalesce(c.claimants, 0)",
        "provisional": "coalesce(c.claimants, 0) < 2",
        "geometry": "CASE WHEN p.latitude IS NOT NULL AND p.longitude IS NOT NULL "
                    "THEN json_object('type', 'Point', 'coordinates', json_array(p.longitude, p.latitude)) END",
        "first_published": "c.first",
        "last_modified": "c.last",
    }
    missing = {c.name for c in INCIDENTS.derived_columns} - set(values) - {"popup"}
    assert not missing, f"no derivation for incidents columns {missing}"
    # The map plugin escapes every popup field, so titles are safe as text.
    lo, hi = values["civilians_killed_min"], values["civilians_killed_max"]
    values["popup"] = f"""json_object(
            'title', i.title,
            'description',
                CASE WHEN i.date_start = i.date_end THEN i.date_start ELSE i.date_start || ' to ' || i.date_end END
                || ' · civilians killed: ' ||
                CASE
                  WHEN {lo} IS NULL AND ({hi}) IS NULL THEN 'no figure'
                  WHEN ({hi}) IS NULL THEN {lo} || ' or more'
                  WHEN {lo} IS NULL THEN 'up to ' || ({hi})
                  WHEN {lo} = ({hi}) THEN {lo}
                  ELSE {lo} || '–' || ({hi})
                END,
            'link', '/{database}/incidents/' || i.incident_id)"""
    names = [c.name for c in INCIDENTS.columns]
    selected = [values.get(n, f"i.[{n}]") for n in names]
    copy = f"""
        INSERT OR IGNORE INTO main.incidents (rowid, {", ".join(f"[{n}]" for n in names)})
        SELECT i._rowid, {", ".join(selected)}
        FROM ({rows_to_copy(INCIDENTS, rejected)}) i
        LEFT JOIN temp.incident_places p ON p.place_id = i.place_id
        LEFT JOIN temp.incident_facts c ON c.staged_rowid = i._rowid"""
    (temp_cache,) = conn.execute("PRAGMA temp.cache_size").fetchone()
    with attached(conn, loaded.staged, "stage"):
        derive_actor_tops(conn)  # claimants are counted by the top of their actors' parent chain
        conn.execute(create_facts)
        conn.execute(fill_facts)
        conn.execute(f"PRAGMA temp.cache_size = -{PLACES_CACHE_KIB}")
        try:
            conn.execute(create_places)
            conn.execute(fill_places)
            copied = conn.execute(copy).rowcount
        finally:
            conn.execute(f"PRAGMA temp.cache_size = {temp_cache}")  # gives the pages back
        conn.execute("DROP TABLE temp.incident_places")
        conn.execute("DROP TABLE temp.incident_facts")
    return copied


def derive_figure_provisional(conn: sqlite3.Connection) -> None:
    # A figure is provisional when no figure from another source has the same metric, incident, scope and
    # values. Every figure is copied in as provisional (the column's default) and only those another source
    # agrees with are written (374k of the bench's 3M figures: 5.0 s, against 8.7 s writing every row), and
    # every column the question reads is in the claim index, so each figure's neighbours are found without
    # reading the table (1.6 s, against 8.2 s for a window pass over the table sorted; docs/performance.md).
    claim = index_name("figures", CLAIM_INDEX)
    conn.execute(f"""
        UPDATE figures SET provisional = 0
        WHERE rowid IN (SELECT f.rowid FROM figures f INDEXED BY {claim}
                        WHERE EXISTS (SELECT 1 FROM figures g INDEXED BY {claim}
                                      WHERE g.incident_id IS f.incident_id AND g.metric = f.metric
                                        AND g.scope_area IS f.scope_area AND g.scope_perpetrator IS f.scope_perpetrator
                                        AND g.value_min IS f.value_min AND g.value_max IS f.value_max
                                        AND g.source_id != f.source_id))""")


def derive_actor_tops(conn: sqlite3.Connection) -> None:
    # The chains are walked down from the actors with no parent, so an actor in a cycle (which
    # checks.check_parent_cycles reports) is never reached and keeps no top.
    conn.execute("""
        WITH RECURSIVE chain(actor_id, top_id) AS (
            SELECT actor_id, actor_id FROM actors WHERE parent_id IS NULL
            UNION ALL
            SELECT a.actor_id, c.top_id FROM actors a JOIN chain c ON a.parent_id = c.actor_id)
        UPDATE actors SET top_id = chain.top_id FROM chain WHERE chain.actor_id = actors.actor_id""")


def derive_corrections(conn: sqlite3.Connection) -> None:
    # A figure or statement a correction overturns must say so wherever it is listed, not only in
    # `discrepancies`: the ids of every correction naming it, in id order.
    for table, column in (("figures", "figure_id"), ("statements", "statement_id")):
        conn.execute(f"""
            UPDATE {table} SET corrected_by = d.ids
            FROM (SELECT {column} AS id, group_concat(discrepancy_id, ' | ') AS ids
                  FROM (SELECT {column}, discrepancy_id FROM discrepancies
                        WHERE {column} IS NOT NULL ORDER BY discrepancy_id)
                  GROUP BY {column}) d
            WHERE d.id = {table}.{column}""")


def derive_after_load(conn: sqlite3.Connection) -> None:
    """The derived columns that read only a few rows: written as soon as every file is loaded, before other
    threads read the tables (civcas.build: their checksums, the summary tables)."""
    derive_corrections(conn)


# The tables derive_all writes: every other table's rows are final once loaded and derive_after_load has run
# (civcas.build takes their checksums meanwhile and refuses this connection any write to them).
DERIVE_WRITES = ("figures",)


def derive_all(conn: sqlite3.Connection) -> None:
    """The derived columns that read whole tables, once their indexes exist (the incidents' are written as they
    are copied, copy_incidents; the corrections right after loading, derive_after_load)."""
    derive_figure_provisional(conn)
