"""Small tables the build computes from the data so that pages never aggregate a whole table per request.

The database is immutable once built, so a count or a grouping a canned query or page would compute over
every incident or figure on each request is computed here once instead. Each table is declared (columns and
descriptions) in civcas/schema.py; the SQL that fills it is here, next to the indexes the canned queries in
civcas/site.yml need beyond those declared per table. tests/test_query_plans.py checks their query plans.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from .checksum import table_sha256
from .load import attached, scratch_file
from .schema import BY_NAME, SUMMARIES
from .validate import quoted

# Incidents grouped by what "where claims disagree" compares: the same incident (or, for aggregate figures, the
# same area, kind, perpetrator, period and date) and metric, among current figures, when more than one distinct
# number is claimed. Ranked by ratio (highest first), so the canned query reads the first rows of the table.
DISAGREEMENT_GROUPS = """
insert into disagreement_groups (rank, about, incident_id, metric, claimants, claims, lowest, highest, spread, ratio,
                                 who_said_what)
select row_number() over (order by ratio desc, about, metric), *
from (
  select coalesce(i.title, g.scope_area || coalesce(' — ' || p.name, '') || ' (' || g.aggregate_kind ||
                  coalesce(', as of ' || g.as_of, '') || ')') as about,
         g.incident_id, g.metric, g.claimants, g.claims, g.lowest, g.highest, g.spread, g.ratio, g.who_said_what
  from (
    -- figures read in storage order (NOT INDEXED) and sorted, rather than each fetched through an index; the
    -- incidents' titles and perpetrators' names are looked up once per group that disagrees, not per figure
    select f.incident_id, f.scope_area, f.aggregate_kind, f.scope_perpetrator, f.period_start, f.period_end,
           case when f.incident_id is null then f.as_of end as as_of, f.metric,
           count(distinct f.claimant) as claimants,
           count(*) as claims,
           min(f.value_min) as lowest,
           max(coalesce(f.value_max, f.value_min)) as highest,
           max(coalesce(f.value_max, f.value_min)) - min(f.value_min) as spread,
           round(1.0 * max(coalesce(f.value_max, f.value_min)) / nullif(min(f.value_min), 0), 2) as ratio,
           group_concat(a.name || ': ' ||
                        case when f.value_min is null then 'up to ' || f.value_max
                             when f.value_max is null then f.value_min || '+'
                             when f.value_max != f.value_min then f.value_min || '–' || f.value_max
                             else f.value_min end ||
                        coalesce(' [corrected: ' || f.corrected_by || ']', ''), '; ') as who_said_what
    from figures f not indexed
    join actors a on a.actor_id = f.claimant
    where f.superseded_by is null
    group by f.incident_id, f.scope_area, f.aggregate_kind, f.scope_perpetrator, f.period_start, f.period_end,
             case when f.incident_id is null then f.as_of end, f.metric
    -- more than one distinct (value_min, value_max): the values are integers, so some bound is not constant
    having min(coalesce(f.value_min, -1)) != max(coalesce(f.value_min, -1))
        or min(coalesce(f.value_max, -1)) != max(coalesce(f.value_max, -1))) g
  left join incidents i on i.incident_id = g.incident_id
  left join actors p on p.actor_id = g.scope_perpetrator)
"""

# The belligerent's conceded toll against everyone else's, per incident, largest gap first.
BELLIGERENT_GAPS = """
insert into belligerent_gaps (rank, incident_id, title, date_start, country, belligerent, belligerent_assessment,
                              conceded, conceded_by, others_lowest, others_highest, other_claimants, gap, ratio)
with per_incident as (
  -- incidents read in storage order (NOT INDEXED), each one's current, uncorrected civilian death tolls found
  -- through the (incident_id, metric) index: no sort, one group per incident (GROUP BY i.rowid follows the scan).
  -- The belligerent's side: the claimant shares the belligerent's top of the actors' parent chain.
  select i.incident_id, i.title, i.date_start, i.country, i.belligerent, i.belligerent_assessment,
         max(coalesce(f.value_max, f.value_min)) filter (where a.top_id = b.top_id) as conceded,
         group_concat(distinct f.claimant) filter (where a.top_id = b.top_id) as conceded_by,
         min(f.value_min) filter (where a.top_id != b.top_id) as others_lowest,
         max(coalesce(f.value_max, f.value_min)) filter (where a.top_id != b.top_id) as others_highest,
         count(distinct f.claimant) filter (where a.top_id != b.top_id) as other_claimants
  from incidents i not indexed
  cross join actors b on b.actor_id = i.belligerent
  cross join figures f on f.incident_id = i.incident_id and f.metric = 'civilians_killed'
  cross join actors a on a.actor_id = f.claimant
  where f.superseded_by is null and f.corrected_by is null
  group by i.rowid),
gaps as (
  select incident_id, title, date_start, country, belligerent, belligerent_assessment,
         coalesce(conceded, case when belligerent_assessment = 'non-credible' then 0 end) as conceded,
         coalesce(conceded_by, case when belligerent_assessment = 'non-credible'
                                    then belligerent || ' (assessed non-credible)' end) as conceded_by,
         others_lowest, others_highest, other_claimants,
         others_highest - coalesce(conceded, 0) as gap,
         round(1.0 * others_highest / nullif(conceded, 0), 1) as ratio
  from per_incident
  where other_claimants > 0 and (conceded is not null or belligerent_assessment = 'non-credible'))
select row_number() over (order by gap desc, incident_id), * from gaps
"""

# Incidents read in storage order (NOT INDEXED) and sorted: walking the (belligerent, date_start) index would fetch
# each incident from a random place in the table (3.2 s against 1.7 s at 1M incidents).
BELLIGERENT_TOTALS = """
insert into belligerent_totals (belligerent, name, incidents, civilians_killed_min, civilians_killed_max,
                                incidents_without_upper_bound, first, last)
select i.belligerent, a.name, count(*),
       sum(i.civilians_killed_min),
       case when count(*) filter (where i.civilians_killed_max is null) = 0 then sum(i.civilians_killed_max) end,
       count(*) filter (where i.civilians_killed_max is null),
       min(i.date_start), max(i.date_end)
from incidents i not indexed join actors a on a.actor_id = i.belligerent
group by i.belligerent
"""

SOURCE_TYPE_TOTALS = """
insert into source_type_totals (source_type, sources, read_directly, known_only_through_citation, publishers)
select source_type, count(*),
       count(*) filter (where cited_in is null),
       count(*) filter (where cited_in is not null),
       group_concat(distinct publisher)
from sources
group by source_type
"""

# Share of incidents with each detail recorded; one pass over incidents.
COMPLETENESS_COUNTS = """
insert into completeness_counts (position, detail, incidents, percent)
with n as (
  select count(*) as total,
         count(*) filter (where date_precision = 1) as exact_date,
         count(*) filter (where geo_precision <= 3) as village,
         count(*) filter (where civilians_killed_min is not null) as toll,
         count(*) filter (where belligerent_status = 'known') as confirmed,
         count(*) filter (where provisional = 0) as corroborated
  from incidents),
details (position, detail, incidents) as (
  select 1, 'exact date (precision 1)', exact_date from n
  union all select 2, 'coordinates at village level or better (precision 1-3)', village from n
  union all select 3, 'a civilian death toll', toll from n
  union all select 4, 'belligerent confirmed striking there', confirmed from n
  union all select 5, 'two or more claimants (not provisional)', corroborated from n)
select position, detail, incidents, round(100.0 * incidents / max((select total from n), 1), 1) from details
"""

# Geolocated incidents per point (a place's coordinates), so "incidents near a point" measures the distance
# once per place and reads the nearest places first. Incidents read in storage order, as above (3.3 s against 1.1 s).
PLACE_INCIDENTS = """
insert into place_incidents (place_id, latitude, longitude, incidents)
select place_id, latitude, longitude, count(*)
from incidents not indexed
where latitude is not null and longitude is not null
group by place_id, latitude, longitude
"""

FILL = {
    "disagreement_groups": DISAGREEMENT_GROUPS,
    "belligerent_gaps": BELLIGERENT_GAPS,
    "belligerent_totals": BELLIGERENT_TOTALS,
    "source_type_totals": SOURCE_TYPE_TOTALS,
    "completeness_counts": COMPLETENESS_COUNTS,
    "place_incidents": PLACE_INCIDENTS,
}

# Indexes the canned queries need that a column list in schema.py cannot say (partial indexes). Aggregate
# figures (no incident) are ~2% of figures: "aggregate tolls by claimant" and the headline numbers walk them in
# perpetrator and metric order without reading the incident figures.
QUERY_INDEXES = (
    "create index if not exists idx_figures_aggregate_scope on figures (scope_perpetrator, metric, as_of) "
    "where incident_id is null",
)


# The summaries that read every figure (~25 s of a build at 1M incidents) are filled beside the rest of the
# build (civcas.build), each by a thread of its own in a scratch file of its own, then copied in:
# build_summary_file and move_summaries. The others are filled in place by derive_summaries.
FILLED_BESIDE = ("disagreement_groups", "belligerent_gaps")


def _check_declared() -> None:
    names = {t.name for t in SUMMARIES}
    if names != set(FILL) or not names.issuperset(FILLED_BESIDE):
        raise RuntimeError(f"summary tables declared and filled differ: {sorted(names ^ set(FILL))}")


def derive_summaries(conn: sqlite3.Connection) -> None:
    """Fill the summary tables not in FILLED_BESIDE, and make the indexes the canned queries need.
    (The summary tables' own indexes, Table.indexes, are made with every other by build.create_indexes.)"""
    _check_declared()
    for table in SUMMARIES:
        if table.name not in FILLED_BESIDE:
            conn.execute(FILL[table.name])
    for sql in QUERY_INDEXES:
        conn.execute(sql)


def build_summary_file(db_path: Path, path: Path, name: str) -> tuple[Path, str]:
    """Fill the summary table `name` (one of FILLED_BESIDE), declared as in `db_path`, in the scratch file `path`
    from the rows of `db_path` (read only); one thread per table. Returns the file and the table's checksum
    (civcas.checksum: its rows, whatever file holds them, so the build need not hash it again once moved in).
    Its SQL names the tables it reads unqualified: the database is attached, and SQLite looks a name up in the
    scratch file first, where only the summary table is. (The page cache stays the default 2 MB: these sorts take
    as long with 32 MB, 15.2 s and 16.1 s at 1M, and memory is scarcer than time while other connections work.)"""
    _check_declared()
    path.unlink(missing_ok=True)
    with scratch_file(path, db_path) as conn:
        (declared,) = conn.execute("SELECT sql FROM src.sqlite_master WHERE type = 'table' AND name = ?",
                                   (name,)).fetchone()
        conn.execute(declared)
        conn.execute(FILL[name])
        # Its indexes too, as the build declares them: the copy into the database (still empty) is then SQLite's
        # transfer of whole records, tables and indexes alike, rather than an index update per row.
        for i, columns in enumerate(BY_NAME[name].all_indexes):
            conn.execute(f'CREATE INDEX main."{name}_{i}" ON "{name}" ({", ".join(map(quoted, columns))})')
        checksum = table_sha256(conn, name, BY_NAME[name].pk, checked_types=True)
    return path, checksum


def move_summaries(conn: sqlite3.Connection, filled: dict[str, Path]) -> None:
    """Copy the tables build_summary_file filled (name -> its scratch file) into the database on `conn`."""
    for name, path in filled.items():
        with attached(conn, path, "beside"):
            conn.execute(f'INSERT INTO main."{name}" SELECT * FROM beside."{name}"')
