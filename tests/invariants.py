"""Every documented rule of a built civcas.db, re-checked from the outside.

Written independently of civcas/validate.py and civcas/checks.py (it reads only the schema's declarations
of types, vocabularies and bounds, and docs/methodology.md's rules): a build that lets a broken row through
fails here even if the build's own check has the same bug. Returns a list of violations (empty = valid).
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3

from civcas.schema import DATE_PRECISION_MAX_SPAN, OPEN_ENDED, TABLES

ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _valid_date(text: str) -> bool:
    if not DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def column_violations(conn: sqlite3.Connection) -> list[str]:
    out = []
    for table in TABLES:
        for c in table.columns:
            rows = conn.execute(f'SELECT "{table.pk}", "{c.name}" FROM "{table.name}"').fetchall()
            for key, value in rows:
                where = f"{table.name}[{key}].{c.name}"
                if value is None:
                    if c.required:
                        out.append(f"{where}: required but NULL")
                    continue
                if c.values is not None and value not in c.values:
                    out.append(f"{where}: {value!r} not an allowed value")
                kind = c.kind
                if kind == "id" and not (isinstance(value, str) and ID.fullmatch(value)):
                    out.append(f"{where}: {value!r} is not a slug")
                elif kind == "date" and not (isinstance(value, str) and _valid_date(value)):
                    out.append(f"{where}: {value!r} is not a date")
                elif kind == "url" and not (isinstance(value, str) and re.match(r"https?://[^\s/]+", value)
                                            and not any(ch.isspace() for ch in value)):
                    out.append(f"{where}: {value!r} is not an http(s) URL")
                elif kind == "language" and not (isinstance(value, str) and re.fullmatch(r"[a-z]{2}", value)):
                    out.append(f"{where}: {value!r} is not a language code")
                elif kind == "country" and not (isinstance(value, str) and re.fullmatch(r"[A-Z]{2}", value)):
                    out.append(f"{where}: {value!r} is not a country code")
                elif kind == "flag" and value not in (0, 1):
                    out.append(f"{where}: {value!r} is not a flag")
                elif kind == "integer" and not isinstance(value, int):
                    out.append(f"{where}: {value!r} is not an integer")
                elif kind == "real" and not isinstance(value, (int, float)):
                    out.append(f"{where}: {value!r} is not a number")
                elif kind == "text" and not (isinstance(value, str) and value.strip()):
                    out.append(f"{where}: {value!r} is empty text")
                if c.minimum is not None and isinstance(value, (int, float)) and value < c.minimum:
                    out.append(f"{where}: {value} below {c.minimum}")
                if c.maximum is not None and isinstance(value, (int, float)) and value > c.maximum:
                    out.append(f"{where}: {value} above {c.maximum}")
    return out


RULES = {
    # name: SQL returning offending keys
    "foreign keys": "SELECT * FROM pragma_foreign_key_check",
    "qualifier exact/about has min = max": """
        SELECT figure_id FROM figures WHERE qualifier IN ('exact', 'about')
        AND (value_min IS NULL OR value_max IS NULL OR value_min != value_max)""",
    "open-ended qualifier has a min and no max": f"""
        SELECT figure_id FROM figures WHERE qualifier IN ({", ".join(repr(q) for q in OPEN_ENDED)})
        AND (value_min IS NULL OR value_max IS NOT NULL)""",
    "'up to' has a max and no min": """
        SELECT figure_id FROM figures WHERE qualifier = 'up to' AND (value_min IS NOT NULL OR value_max IS NULL)""",
    "'range' has min < max": """
        SELECT figure_id FROM figures WHERE qualifier = 'range'
        AND (value_min IS NULL OR value_max IS NULL OR value_min >= value_max)""",
    "aggregates state their area and kind": """
        SELECT figure_id FROM figures WHERE incident_id IS NULL AND (scope_area IS NULL OR aggregate_kind IS NULL)""",
    "incident figures have no scope": """
        SELECT figure_id FROM figures WHERE incident_id IS NOT NULL AND (scope_area IS NOT NULL
        OR aggregate_kind IS NOT NULL OR scope_perpetrator IS NOT NULL OR period_start IS NOT NULL
        OR period_end IS NOT NULL)""",
    "period in order": "SELECT figure_id FROM figures WHERE period_start > period_end",
    "superseded by the same claimant, metric and incident": """
        SELECT f.figure_id FROM figures f JOIN figures l ON l.figure_id = f.superseded_by
        WHERE l.claimant != f.claimant OR l.metric != f.metric OR l.incident_id IS NOT f.incident_id
           OR l.figure_id = f.figure_id""",
    "a breakdown never exceeds its total from the same claim": """
        SELECT b.figure_id FROM figures b JOIN figures t
          ON t.source_id = b.source_id AND t.claimant = b.claimant AND t.incident_id IS b.incident_id
         AND t.scope_area IS b.scope_area AND t.scope_perpetrator IS b.scope_perpetrator
         AND t.period_start IS b.period_start AND t.period_end IS b.period_end AND t.as_of IS b.as_of
        WHERE ((b.metric IN ('children_killed', 'women_killed') AND t.metric IN ('civilians_killed', 'deaths_total'))
            OR (b.metric IN ('civilians_killed', 'combatants_killed') AND t.metric = 'deaths_total')
            OR (b.metric IN ('children_injured', 'women_injured') AND t.metric IN ('civilians_injured', 'people_injured'))
            OR (b.metric = 'civilians_injured' AND t.metric = 'people_injured'))
          AND b.value_min > t.value_max""",
    "incident dates in order": "SELECT incident_id FROM incidents WHERE date_start > date_end",
    "places geolocated all the way or not at all": """
        SELECT place_id FROM places WHERE (latitude IS NULL) + (longitude IS NULL) + (geo_precision IS NULL)
        + (geo_method IS NULL) NOT IN (0, 4)""",
    "coordinates inside the country": """
        SELECT p.place_id FROM places p JOIN countries c ON c.country_code = p.country
        WHERE p.latitude IS NOT NULL AND (p.latitude NOT BETWEEN c.lat_min AND c.lat_max
           OR p.longitude NOT BETWEEN c.lon_min AND c.lon_max)""",
    "source read after it was published": "SELECT source_id FROM sources WHERE published > accessed",
    "incident place columns are the place's": """
        SELECT i.incident_id FROM incidents i JOIN places p ON p.place_id = i.place_id
        WHERE i.place IS NOT p.name OR i.place_local IS NOT p.name_local OR i.country IS NOT p.country
           OR i.admin1 IS NOT p.admin1 OR i.latitude IS NOT p.latitude OR i.longitude IS NOT p.longitude
           OR i.geo_precision IS NOT p.geo_precision""",
    "incident year is date_start's": "SELECT incident_id FROM incidents WHERE year != CAST(substr(date_start, 1, 4) AS INTEGER)",
    "actor chains reach a top": "SELECT actor_id FROM actors WHERE top_id IS NULL",
}


def range_violations(conn: sqlite3.Connection) -> list[str]:
    """Recompute every incident's derived ranges and counts in Python, from the figures."""
    out = []
    figures = conn.execute("SELECT incident_id, claimant, metric, value_min, value_max, qualifier, superseded_by, "
                           "source_id FROM figures WHERE incident_id IS NOT NULL").fetchall()
    tops = dict(conn.execute("SELECT actor_id, top_id FROM actors"))
    statements = conn.execute("SELECT incident_id, source_id FROM statements WHERE incident_id IS NOT NULL").fetchall()
    for row in conn.execute("SELECT * FROM incidents"):
        cols = dict(zip([d[0] for d in conn.execute("SELECT * FROM incidents LIMIT 0").description], row))
        iid = cols["incident_id"]
        mine = [f for f in figures if f[0] == iid]
        for metric in ("civilians_killed", "civilians_injured", "children_killed", "women_killed"):
            current = [f for f in mine if f[2] == metric and f[6] is None]
            lows = [f[3] for f in current if f[3] is not None]
            bounded = [f[4] for f in current if f[5] not in OPEN_ENDED and f[4] is not None]
            opens = [f[3] for f in current if f[5] in OPEN_ENDED]
            lo = min(lows) if lows else None
            hi = max(bounded) if bounded else None
            if opens and (hi is None or max(opens) >= hi):
                hi = None
            if (cols[f"{metric}_min"], cols[f"{metric}_max"]) != (lo, hi):
                out.append(f"incidents[{iid}].{metric}: ({cols[f'{metric}_min']}, {cols[f'{metric}_max']}) != ({lo}, {hi})")
        claimants = len({tops.get(f[1]) for f in mine})
        if cols["claimants_count"] != claimants:
            out.append(f"incidents[{iid}].claimants_count {cols['claimants_count']} != {claimants}")
        if cols["provisional"] != int(claimants < 2):
            out.append(f"incidents[{iid}].provisional wrong")
        sources = len({f[7] for f in mine} | {s[1] for s in statements if s[0] == iid})
        if cols["sources_count"] != sources:
            out.append(f"incidents[{iid}].sources_count {cols['sources_count']} != {sources}")
        span = (dt.date.fromisoformat(cols["date_end"]) - dt.date.fromisoformat(cols["date_start"])).days
        if span > DATE_PRECISION_MAX_SPAN.get(cols["date_precision"], 10 ** 6):
            out.append(f"incidents[{iid}]: {span} days is too wide for precision {cols['date_precision']}")
    return out


def violations(db_path) -> list[str]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out = []
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            out.append("integrity_check failed")
        out += column_violations(conn)
        for name, sql in RULES.items():
            rows = conn.execute(sql).fetchall()
            if rows:
                out.append(f"{name}: {rows[:3]}")
        out += range_violations(conn)
        return out
    finally:
        conn.close()
