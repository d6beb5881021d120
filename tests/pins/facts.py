"""The queries behind tests/pins/*.csv, shared by the test and by update.py."""
from __future__ import annotations

import sqlite3

INCIDENT_FACTS_SQL = """
select i.incident_id, i.place_id, i.country, i.date_start, i.date_end, i.date_precision,
       round(i.latitude, 4) as latitude, round(i.longitude, 4) as longitude, i.geo_precision,
       i.belligerent, i.belligerent_status, i.belligerent_assessment, i.grading,
       (select max(coalesce(f.value_max, f.value_min)) from figures f join actors a on a.actor_id = f.claimant
          join actors b on b.actor_id = i.belligerent
        where f.incident_id = i.incident_id and f.metric = 'civilians_killed' and f.superseded_by is null
          and a.top_id = b.top_id) as conceded,
       i.civilians_killed_min, i.civilians_killed_max,
       (select max(coalesce(f.value_max, f.value_min)) from figures f
        where f.incident_id = i.incident_id and f.metric = 'civilians_killed' and f.superseded_by is null) as highest_claim
from incidents i order by i.incident_id"""

SERIES_SQL = """
select f.as_of, f.scope_area, f.claimant, f.value_min, f.value_max, f.qualifier
from figures f join actors a on a.actor_id = f.claimant
where f.incident_id is null and f.metric = 'civilians_killed' and f.aggregate_kind = 'running total'
  and f.scope_perpetrator = 'us-led-coalition' and a.top_id = 'us-led-coalition' and f.corrected_by is null
group by f.as_of, f.scope_area, f.claimant, f.value_min, f.value_max, f.qualifier
order by f.as_of, f.claimant, f.value_min"""


def rows_as_text(conn: sqlite3.Connection, sql: str) -> list[dict[str, str]]:
    """Rows as CSV would read them back: every value a string, NULL as ''."""
    cur = conn.execute(sql)
    names = [d[0] for d in cur.description]
    return [{n: "" if v is None else str(v) for n, v in zip(names, row)} for row in cur]
