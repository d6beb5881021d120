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

from .schema import INCIDENTS, OPEN_ENDED

RANGED_METRICS = ("civilians_killed", "civilians_injured", "children_killed", "women_killed")
PLACE_COLUMNS = [c for c in INCIDENTS.columns if c.derived and c.derived.startswith("places.")]


def derive_place_columns(conn: sqlite3.Connection) -> None:
    assignments = ", ".join(f"[{c.name}] = p.[{c.derived.split('.')[1]}]" for c in PLACE_COLUMNS)
    conn.execute(f"UPDATE incidents SET {assignments} FROM places p WHERE p.place_id = incidents.place_id")


def derive_year(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE incidents SET year = CAST(substr(date_start, 1, 4) AS INTEGER)")


def derive_ranges(conn: sqlite3.Connection) -> None:
    open_ended = ", ".join(f"'{q}'" for q in OPEN_ENDED)
    conn.execute(f"""
        CREATE TEMP TABLE claim_ranges AS
        SELECT incident_id, metric,
               min(value_min) AS lo,
               max(CASE WHEN qualifier NOT IN ({open_ended}) THEN value_max END) AS hi,
               max(CASE WHEN qualifier IN ({open_ended}) THEN value_min END) AS open_lo
        FROM figures
        WHERE incident_id IS NOT NULL AND superseded_by IS NULL
          AND metric IN ({", ".join(f"'{m}'" for m in RANGED_METRICS)})
        GROUP BY incident_id, metric""")
    for metric in RANGED_METRICS:
        conn.execute(f"""
            UPDATE incidents SET
              [{metric}_min] = r.lo,
              [{metric}_max] = CASE WHEN r.open_lo IS NOT NULL AND (r.hi IS NULL OR r.open_lo >= r.hi)
                                    THEN NULL ELSE r.hi END
            FROM claim_ranges r
            WHERE r.incident_id = incidents.incident_id AND r.metric = '{metric}'""")
    conn.execute("DROP TABLE claim_ranges")


def derive_counts(conn: sqlite3.Connection) -> None:
    # Every metric in schema.METRICS counts people killed or injured, so every figure is a casualty claim.
    conn.execute("""
        WITH cited AS (
            SELECT incident_id, source_id FROM figures WHERE incident_id IS NOT NULL
            UNION SELECT incident_id, source_id FROM statements WHERE incident_id IS NOT NULL),
        per_source AS (SELECT incident_id, count(*) AS n FROM cited GROUP BY incident_id),
        claimants AS (
            -- Independence is judged by claimant, and a claimant's spokesmen, relatives or branches (actors under
            -- it in the parent chain) are the same claimant: count distinct tops of the chain.
            SELECT f.incident_id, count(DISTINCT a.top_id) AS n FROM figures f JOIN actors a ON a.actor_id = f.claimant
            WHERE f.incident_id IS NOT NULL GROUP BY f.incident_id)
        UPDATE incidents SET
            sources_count = coalesce((SELECT n FROM per_source s WHERE s.incident_id = incidents.incident_id), 0),
            claimants_count = coalesce((SELECT n FROM claimants c WHERE c.incident_id = incidents.incident_id), 0)""")
    conn.execute("UPDATE incidents SET provisional = (claimants_count < 2)")


def derive_figure_provisional(conn: sqlite3.Connection) -> None:
    # A figure is provisional when no figure from another source has the same metric, incident, scope and
    # values. source_id is never NULL, so "another source in the group" is min(source_id) != max(source_id);
    # PARTITION BY puts NULLs together as IS does. One window pass, not a correlated subquery per figure.
    conn.execute("""
        UPDATE figures SET provisional = w.single
        FROM (SELECT rowid AS id, min(source_id) OVER claim = max(source_id) OVER claim AS single
              FROM figures
              WINDOW claim AS (PARTITION BY metric, incident_id, scope_area, scope_perpetrator, value_min, value_max)) w
        WHERE w.id = figures.rowid""")


def derive_popup(conn: sqlite3.Connection, database: str) -> None:
    # The map plugin escapes every popup field, so titles are safe as text.
    conn.execute(f"""
        UPDATE incidents SET popup = json_object(
            'title', title,
            'description',
                CASE WHEN date_start = date_end THEN date_start ELSE date_start || ' to ' || date_end END
                || ' · civilians killed: ' ||
                CASE
                  WHEN civilians_killed_min IS NULL AND civilians_killed_max IS NULL THEN 'no figure'
                  WHEN civilians_killed_max IS NULL THEN civilians_killed_min || ' or more'
                  WHEN civilians_killed_min IS NULL THEN 'up to ' || civilians_killed_max
                  WHEN civilians_killed_min = civilians_killed_max THEN civilians_killed_min
                  ELSE civilians_killed_min || '–' || civilians_killed_max
                END,
            'link', '/{database}/incidents/' || incident_id)""")


def derive_actor_tops(conn: sqlite3.Connection) -> None:
    # Parent chains are checked for cycles (checks.check_parent_cycles) before this runs.
    conn.execute("""
        WITH RECURSIVE chain(actor_id, top_id) AS (
            SELECT actor_id, actor_id FROM actors WHERE parent_id IS NULL
            UNION ALL
            SELECT a.actor_id, c.top_id FROM actors a JOIN chain c ON a.parent_id = c.actor_id)
        UPDATE actors SET top_id = chain.top_id FROM chain WHERE chain.actor_id = actors.actor_id""")


def derive_geometry(conn: sqlite3.Connection) -> None:
    conn.execute("""
        UPDATE incidents SET geometry = json_object('type', 'Point', 'coordinates', json_array(longitude, latitude))
        WHERE latitude IS NOT NULL AND longitude IS NOT NULL""")


def derive_history(conn: sqlite3.Connection) -> None:
    # first_published: the 'added' change (required by checks.check_changes); last_modified: the latest change
    # to the incident itself or to one of its figures or statements.
    conn.execute("""
        WITH touched AS (
            SELECT row_id AS incident_id, changed_on FROM changes WHERE table_name = 'incidents'
            UNION ALL SELECT f.incident_id, c.changed_on FROM changes c JOIN figures f
                ON c.table_name = 'figures' AND f.figure_id = c.row_id WHERE f.incident_id IS NOT NULL
            UNION ALL SELECT s.incident_id, c.changed_on FROM changes c JOIN statements s
                ON c.table_name = 'statements' AND s.statement_id = c.row_id WHERE s.incident_id IS NOT NULL),
        dates AS (SELECT incident_id, max(changed_on) AS last FROM touched GROUP BY incident_id),
        added AS (SELECT row_id AS incident_id, min(changed_on) AS first FROM changes
                  WHERE table_name = 'incidents' AND action = 'added' GROUP BY row_id)
        UPDATE incidents SET first_published = a.first, last_modified = d.last
        FROM added a JOIN dates d USING (incident_id) WHERE a.incident_id = incidents.incident_id""")


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


def derive_all(conn: sqlite3.Connection, database: str) -> None:
    derive_actor_tops(conn)
    derive_place_columns(conn)
    derive_year(conn)
    derive_ranges(conn)
    derive_counts(conn)
    derive_figure_provisional(conn)
    derive_corrections(conn)
    derive_geometry(conn)
    derive_history(conn)
    derive_popup(conn, database)

