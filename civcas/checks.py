"""Rules that span rows or tables, checked in SQL once every file is loaded.

Each query returns the rowid of the offending row; `LoadedTable.line_of`
turns it back into the line a curator can open.
"""
from __future__ import annotations

import sqlite3

from .load import LoadedTable
from .schema import BREAKDOWNS, BY_NAME, CHANGED_TABLES
from .validate import Problem, lit, shown

# Rows compared by the breakdown rule must agree on all of these.
SAME_CLAIM = ("source_id", "claimant", "incident_id", "scope_area", "scope_perpetrator",
              "period_start", "period_end", "as_of")


def check_references(conn: sqlite3.Connection, loaded: dict[str, LoadedTable]) -> list[Problem]:
    problems = []
    for name, lt in loaded.items():
        derived = {c.name for c in lt.table.derived_columns}
        for column, ref_table, ref_column in lt.table.foreign_keys:
            if column in derived:
                continue  # copied from a row whose own reference is checked (incidents.country from places)
            if not loaded[ref_table].complete:
                continue  # its file could not be read: that problem is reported instead
            rejected = loaded[ref_table].rejected
            # The distinct values first (read from the column's index), then the rows holding an unknown one:
            # a handful of lookups per distinct value rather than one per row.
            rows = conn.execute(
                f'SELECT rowid, [{column}] FROM "{name}" WHERE [{column}] IN ('
                f'SELECT DISTINCT [{column}] FROM "{name}" WHERE [{column}] IS NOT NULL '
                f'EXCEPT SELECT [{ref_column}] FROM "{ref_table}")')
            for rowid, value in rows:
                if value in rejected:
                    continue  # the row it names was reported already
                problems.append(Problem(lt.path, lt.line_of(rowid), column,
                                        f"no {ref_table} row has {ref_column} {shown(value)}"))
    return problems


def check_breakdowns(conn: sqlite3.Connection, figures: LoadedTable) -> list[Problem]:
    # First whether any claim breaks the rule at all: one grouped pass over the figures in storage order, each
    # claim's largest lower bound of a part against its smallest upper bound of a total (the same test as the pairs
    # below: NULLs are left out of both). Only if one does are the pairs themselves looked for, through the
    # indexes: a lookup per part figure lands on a random page (at 1M incidents 8-11 s against 5 s for the pass).
    metrics = sorted(set(BREAKDOWNS) | {total for totals in BREAKDOWNS.values() for total in totals})
    broken = " OR ".join(f"max(value_min) FILTER (WHERE metric = {lit(part)}) > "
                         f"min(value_max) FILTER (WHERE metric = {lit(total)})"
                         for part, totals in BREAKDOWNS.items() for total in totals)
    if not conn.execute(f"SELECT 1 FROM figures NOT INDEXED WHERE metric IN ({', '.join(map(lit, metrics))}) "
                        f"GROUP BY {', '.join(SAME_CLAIM)} HAVING {broken} LIMIT 1").fetchone():
        return []
    # Every (part, total) pair at once. Each part figure is read once in table order (CROSS JOIN keeps it the
    # outer loop) and its totals found through an index: the (incident_id, metric) index for an incident's
    # figures, the source_id index for aggregates (all aggregates share incident_id NULL, so that index would
    # compare every aggregate with every other).
    # Unary + keeps the planner from looking totals up by any of these columns (without statistics it would pick
    # period_start, NULL for nearly every figure): only the match below is looked up through an index.
    same = " AND ".join(f"+t.[{c}] IS b.[{c}]" for c in SAME_CLAIM if c != "incident_id")
    pairs = ", ".join(f"('{part}', '{total}')" for part, totals in BREAKDOWNS.items() for total in totals)
    branch = ("SELECT b.rowid, pairs.part, pairs.total, b.value_min, t.value_max, t.figure_id "
              "FROM figures b CROSS JOIN pairs CROSS JOIN figures t ON {match} AND " + same +
              " WHERE b.metric = pairs.part AND b.value_min > t.value_max AND b.incident_id IS {incident}")
    rows = conn.execute(
        f"WITH pairs(part, total) AS (VALUES {pairs}) "
        + branch.format(match="t.incident_id = b.incident_id AND t.metric = pairs.total", incident="NOT NULL")
        + " UNION ALL "
        + branch.format(match="t.source_id = b.source_id AND +t.metric = pairs.total AND +t.incident_id IS NULL",
                        incident="NULL"))
    return [Problem(figures.path, figures.line_of(rowid), "value_min",
                    f"{part} exceeds {total} {limit} (figure {total_id!r}) from the same claimant and source "
                    f"for the same incident or scope ({value})")
            for rowid, part, total, value, limit, total_id in rows]


def check_supersessions(conn: sqlite3.Connection, figures: LoadedTable) -> list[Problem]:
    rows = conn.execute(
        "SELECT f.rowid, f.superseded_by, l.claimant, l.metric, l.incident_id FROM figures f "
        "JOIN figures l ON l.figure_id = f.superseded_by "
        "WHERE l.claimant != f.claimant OR l.metric != f.metric OR l.incident_id IS NOT f.incident_id "
        "OR l.figure_id = f.figure_id")
    return [Problem(figures.path, figures.line_of(rowid), "superseded_by",
                    f"must name another figure with the same claimant, metric and incident "
                    f"(that one is {claimant}, {metric}, {incident}) ({later!r})")
            for rowid, later, claimant, metric, incident in rows]


def check_country_bounds(conn: sqlite3.Connection, places: LoadedTable) -> list[Problem]:
    rows = conn.execute(
        "SELECT p.rowid, p.latitude, p.longitude, c.name FROM places p JOIN countries c ON c.country_code = p.country "
        "WHERE p.latitude IS NOT NULL AND (p.latitude NOT BETWEEN c.lat_min AND c.lat_max "
        "OR p.longitude NOT BETWEEN c.lon_min AND c.lon_max)")
    return [Problem(places.path, places.line_of(rowid), "latitude",
                    f"point lies outside {country}'s bounding box ({lat}, {lon})")
            for rowid, lat, lon, country in rows]


def check_parent_cycles(conn: sqlite3.Connection, actors: LoadedTable) -> list[Problem]:
    # Walk each actor's parent chain; an actor the walk comes back to is on a cycle. The walk stops at a
    # missing parent (reported by check_references) and after as many steps as there are actors.
    rows = conn.execute("""
        WITH RECURSIVE walk(start, cur, depth) AS (
            SELECT actor_id, parent_id, 1 FROM actors WHERE parent_id IS NOT NULL
            UNION ALL
            SELECT w.start, a.parent_id, w.depth + 1 FROM walk w JOIN actors a ON a.actor_id = w.cur
            WHERE a.parent_id IS NOT NULL AND w.cur != w.start AND w.depth <= (SELECT count(*) FROM actors))
        SELECT a.rowid, a.parent_id FROM actors a
        WHERE a.actor_id IN (SELECT start FROM walk WHERE cur = start)""")
    return [Problem(actors.path, actors.line_of(rowid), "parent_id",
                    f"parent chain loops back to this actor instead of reaching an actor with no parent ({parent!r})")
            for rowid, parent in rows]


def check_changes(conn: sqlite3.Connection, loaded: dict[str, LoadedTable]) -> list[Problem]:
    """The change log and the tables agree: added and changed rows exist, withdrawn ids are never reused,
    a merged row names an existing replacement, and every incident says when it was added."""
    changes, problems = loaded["changes"], []
    # The change log read once in storage order and sorted by the ids it names, so that each table's id index is
    # then looked up in its own order, page after page, rather than at a random page per change (at 1M incidents:
    # 1.1M changes, 7.9 s of which 4.5 s reading pages, docs/performance.md).
    conn.execute("CREATE TEMP TABLE changed AS SELECT rowid AS id, table_name, row_id, action, replaced_by "
                 "FROM changes NOT INDEXED ORDER BY table_name, row_id")
    for table in CHANGED_TABLES:
        if not loaded[table].complete:
            continue
        pk = BY_NAME[table].pk

        def live(column: str) -> str:
            return f'EXISTS (SELECT 1 FROM "{table}" t WHERE t."{pk}" = c.{column})'
        for rowid, row_id, action in conn.execute(
                f"SELECT c.id, c.row_id, c.action FROM temp.changed c WHERE c.table_name = ? AND "
                f"((c.action IN ('added', 'changed') AND NOT {live('row_id')}) OR "
                f"(c.action IN ('removed', 'merged') AND {live('row_id')}))", (table,)):
            if row_id in loaded[table].rejected:
                continue  # the row it names was reported already
            message = (f"no {table} row has {pk} {row_id!r}" if action in ("added", "changed")
                       else f"{row_id!r} is {action}: its id may not be used again in {table}")
            problems.append(Problem(changes.path, changes.line_of(rowid), "row_id", message))
        for rowid, target in conn.execute(
                f"SELECT c.id, c.replaced_by FROM temp.changed c WHERE c.table_name = ? AND c.action = 'merged' "
                f"AND NOT {live('replaced_by')}", (table,)):
            problems.append(Problem(changes.path, changes.line_of(rowid), "replaced_by",
                                    f"no {table} row has {pk} {target!r} to replace it"))
    if loaded["incidents"].complete and changes.complete:
        incidents = loaded["incidents"]
        # NOT IN (subquery): SQLite builds an index of the list, which the incidents' ids (read from their own
        # index, in order) then look up in order too.
        for rowid, incident_id in conn.execute(
                "SELECT i.rowid, i.incident_id FROM incidents i WHERE i.incident_id NOT IN ("
                "SELECT row_id FROM temp.changed WHERE table_name = 'incidents' AND action = 'added')"):
            problems.append(Problem(incidents.path, incidents.line_of(rowid), "incident_id",
                                    f"no 'added' row in changes.csv says when {incident_id!r} was published"))
    conn.execute("DROP TABLE temp.changed")
    return problems


def check_all(conn: sqlite3.Connection, loaded: dict[str, LoadedTable]) -> list[Problem]:
    return (check_references(conn, loaded)
            + check_breakdowns(conn, loaded["figures"])
            + check_supersessions(conn, loaded["figures"])
            + check_parent_cycles(conn, loaded["actors"])
            + check_country_bounds(conn, loaded["places"])
            + check_changes(conn, loaded))
