"""The rules a raw CSV row must meet, and reading the raw files.

Each raw file is streamed once into a staging table (civcas.load); every cell is then checked in SQL by the
rule compiled here from its column's declaration (cell_error_sql), and every row whose cells are all valid by
the rules across its cells (ROW_RULES). Every problem becomes one `Problem`, so a curator sees all of them in
one run. Rules that need more than one row (unique ids, references, breakdown <= total) are in civcas.checks.
"""
from __future__ import annotations

import csv
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .schema import DATE_PRECISION_MAX_SPAN, OPEN_ENDED, Column, Table

csv.field_size_limit(10_000_000)


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.column}: {self.message}"


def shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


# The characters str.strip() removes (Unicode White_Space), for SQL's trim() and GLOB: a cell with any of them at
# either end is reported, as a curator cannot see them.
WHITESPACE = "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LANGUAGE = re.compile(r"[a-z]{2}")
COUNTRY = re.compile(r"[A-Z]{2}")


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# --- Rules for one cell ----------------------------------------------------------------------------------------
# Every cell is validated in SQL, set-based, over the staged raw text (civcas.load): for each column kind, the
# conditions that reject a non-empty cell, in order, each with its message. {c} is the cell (raw text, never
# empty here) and {s} the same without a leading + or -.

SIGNLESS = "CASE WHEN substr({c}, 1, 1) IN ('+', '-') THEN substr({c}, 2) ELSE {c} END"
KIND_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "id": (("{c} GLOB '*[^a-z0-9-]*' OR {c} GLOB '-*' OR {c} GLOB '*-' OR {c} GLOB '*--*'",
            "not a slug: use lower-case letters, digits and single hyphens"),),
    "text": (),
    "integer": (("{s} = '' OR {s} GLOB '*[^0-9]*'", "not a whole number"),
                ("length(ltrim({s}, '0')) > 18", "is too large (more than 18 digits)")),
    # A plain decimal number: digits with at most one point; no exponent, no digit of another script.
    "real": (("lower({s}) IN ('nan', 'inf', 'infinity')", "not a finite number"),
             ("{s} NOT GLOB '*[0-9]*' OR {s} GLOB '*[^0-9.]*' OR {s} GLOB '*.*.*'", "not a number")),
    "date": (("{c} NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'", "not an ISO date YYYY-MM-DD"),
             # '+0 days' makes SQLite normalise an impossible day (2016-02-30 -> 2016-03-01), so it no longer compares equal
             ("date({c}, '+0 days') IS NOT {c} OR {c} < '0001'", "no such date")),
    # scheme http or https (any case), a non-empty host, no whitespace anywhere
    "url": (("NOT (lower(substr({c}, 1, 7)) = 'http://' AND substr({c}, 8, 1) NOT IN ('', '/', '?', '#') "
             "OR lower(substr({c}, 1, 8)) = 'https://' AND substr({c}, 9, 1) NOT IN ('', '/', '?', '#')) "
             # (the whitespace class is slow to match, so only URLs with a character outside printable ASCII get it)
             "OR {c} GLOB '*[^!-~]*' AND {c} GLOB " + lit("*[" + WHITESPACE + "]*"), "not an absolute http(s) URL"),),
    "language": (("{c} NOT GLOB '[a-z][a-z]'", "not an ISO 639-1 two-letter language code"),),
    "country": (("{c} NOT GLOB '[A-Z][A-Z]'", "not an ISO 3166-1 alpha-2 country code"),),
    "flag": (("{c} NOT IN ('0', '1')", "must be 0 or 1"),),
}
CASTS = {"INTEGER": "CAST({c} AS INTEGER)", "REAL": "CAST({c} AS REAL)", "TEXT": "{c}"}


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def typed_sql(column: Column, cell: str | None = None) -> str:
    """The SQL value of a valid raw cell: NULL when empty, else the column's type."""
    c = f"nullif({cell or quoted(column.name)}, '')"
    return CASTS[column.sql_type].format(c=c)


def cell_error_sql(column: Column, cell: str | None = None) -> str:
    """A SQL expression giving the message for an invalid raw cell, NULL for a valid one.

    The first rule a cell breaks gives the message, in this order: leading or trailing whitespace, empty when
    required, the kind's rules, the allowed values, the bounds."""
    c = cell or quoted(column.name)
    s = SIGNLESS.format(c=c)
    value = CASTS[column.sql_type].format(c=c)
    spaces = f"{c} != trim({c}, {lit(WHITESPACE)})"
    empty = lit("required, but empty") if column.required else "NULL"
    rules = [(condition.format(c=c, s=s), message) for condition, message in KIND_RULES[column.kind]]
    if column.values is not None:
        allowed = ", ".join(str(v) if isinstance(v, int) else lit(v) for v in column.values)
        rules.append((f"{value} NOT IN ({allowed})", "not an allowed value; use one of " + ", ".join(map(str, column.values))))
    if column.minimum is not None:
        rules.append((f"{value} < {column.minimum!r}", f"must be at least {column.minimum:g}"))
    if column.maximum is not None:
        rules.append((f"{value} > {column.maximum!r}", f"must be at most {column.maximum:g}"))
    if not rules:  # free text
        return f"CASE WHEN {spaces} THEN 'has leading or trailing spaces' WHEN {c} = '' THEN {empty} END"
    # A cell that meets every rule of its kind or vocabulary has no whitespace at either end (none allows
    # it), so the costlier whitespace test runs only to name the problem of a cell that breaks a rule.
    broken = " OR ".join(f"({condition})" for condition, _ in rules)
    named = " ".join(f"WHEN {condition} THEN {lit(message)}" for condition, message in rules)
    return (f"CASE WHEN {c} = '' THEN {empty} WHEN NOT ({broken}) THEN NULL "
            f"ELSE CASE WHEN {spaces} THEN 'has leading or trailing spaces' {named} END END")


# --- Reading ------------------------------------------------------------------

def _bad_utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield number, f"not valid UTF-8 (byte {raw[e.start:e.start + 1]!r} at position {e.start + 1})"


def read_rows(path: Path, shown_path: str, width: int, lines: array, problems: list[Problem]) -> Iterator[list[str]]:
    """Yield each record's cells after the header, appending the line it starts on to `lines`.

    Accepts a UTF-8 BOM and CRLF line endings; blank lines are skipped; a record with the wrong number of cells is
    reported and skipped; reading stops at malformed CSV or bytes that are not UTF-8 (both reported).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            if next(reader, None) is None:
                problems.append(Problem(shown_path, 1, "(header)", "file is empty; a header row is required"))
                return
            start = reader.line_num + 1
            append = lines.append
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    problems.append(Problem(shown_path, start, "(row)", f"malformed CSV: {e}"))
                    return
                if len(cells) == width:
                    if cells[0] or any(cells):
                        append(start)
                        yield cells
                elif any(cells):
                    problems.append(Problem(shown_path, start, "(row)",
                                            f"has {len(cells)} cells, the header has {width} ({','.join(cells)[:60]!r})"))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        for line, message in _bad_utf8_lines(path):
            problems.append(Problem(shown_path, line, "(file)", message))


def nul_lines(path: Path) -> list[int]:
    """Lines holding a NUL byte, which SQLite's text functions would stop at: such a file is rejected."""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            if b"\0" in chunk:
                break
        else:
            return []
        f.seek(0)
        return [number for number, line in enumerate(f, start=1) if b"\0" in line]


def check_header(table: Table, header: list[str], shown_path: str, problems: list[Problem]) -> bool:
    expected = [c.name for c in table.raw_columns]
    ok = True
    for name in expected:
        if name not in header:
            problems.append(Problem(shown_path, 1, name, "missing column"))
            ok = False
    derived = {c.name for c in table.derived_columns}
    for name in header:
        if name in derived:
            problems.append(Problem(shown_path, 1, name, "is derived by the build from other tables; remove it from the raw file"))
            ok = False
        elif name not in expected:
            if not name or re.fullmatch(r"[^:\s]+", name):
                problems.append(Problem(shown_path, 1, name or "(blank)", "unknown column"))
            else:  # a name with a colon or whitespace would make the FILE:LINE: column: message line ambiguous
                problems.append(Problem(shown_path, 1, "(header)", f"unknown column {shown(name)}"))
            ok = False
    if len(set(header)) != len(header):
        problems.append(Problem(shown_path, 1, "(header)", "a column name appears twice"))
        ok = False
    return ok


def read_header(path: Path) -> list[str]:
    # Undecodable bytes are replaced here so the header can still be checked; read_rows reports them.
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        return next(csv.reader(f), [])


# --- Rules within one row ---------------------------------------------------------------------------------------
# Checked in SQL on rows whose every cell is valid, over the typed values (NULL = empty). Each rule: the column
# reported, the condition that breaks it, the message (a SQL expression) and the value shown after it.
# civcas_str(x) and civcas_shown(x) are Python's str() and shown(), registered by civcas.load.

@dataclass(frozen=True)
class RowRule:
    column: str
    broken: str
    message: str
    value: str


def _literal_rule(column: str, broken: str, message: str, value: str | None = None) -> RowRule:
    return RowRule(column, broken, lit(message), value or column)


def _ordered(first: str, second: str) -> RowRule:
    return RowRule(second, f"{first} IS NOT NULL AND {second} IS NOT NULL AND {first} > {second}",
                   f"'is before {first} ' || civcas_str({first})", second)


_OPEN = ", ".join(lit(q) for q in OPEN_ENDED)
_SPANS = " ".join(f"WHEN {code} THEN {days}" for code, days in DATE_PRECISION_MAX_SPAN.items())
_GEO = ("latitude", "longitude", "geo_precision", "geo_method")
_GIVEN = "rtrim(" + " || ".join(f"CASE WHEN {n} IS NOT NULL THEN '{n}, ' ELSE '' END" for n in _GEO) + ", ', ')"

ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    "figures": (
        RowRule("value_min", "value_min IS NOT NULL AND value_max IS NOT NULL AND value_min > value_max",
                "'is greater than value_max ' || civcas_str(value_max)", "value_min"),
        RowRule("value_max", "qualifier IN ('exact', 'about') AND (value_min IS NULL OR value_min IS NOT value_max)",
                "'must equal value_min for qualifier ' || civcas_shown(qualifier)", "value_max"),
        RowRule("value_max", f"qualifier IN ({_OPEN}) AND (value_min IS NULL OR value_max IS NOT NULL)",
                "'must be empty and value_min given for open-ended qualifier ' || civcas_shown(qualifier)", "value_max"),
        _literal_rule("value_min", "qualifier = 'up to' AND (value_min IS NOT NULL OR value_max IS NULL)",
                      "must be empty and value_max given for qualifier 'up to'"),
        _literal_rule("value_max", "qualifier = 'range' AND (value_min IS NULL OR value_max IS NULL OR value_min >= value_max)",
                      "must be greater than value_min for qualifier 'range'"),
        _literal_rule("scope_area", "incident_id IS NULL AND scope_area IS NULL",
                      "required for an aggregate figure (one with no incident_id)"),
        _literal_rule("aggregate_kind", "incident_id IS NULL AND aggregate_kind IS NULL",
                      "required for an aggregate figure (one with no incident_id)"),
        *(_literal_rule(name, f"incident_id IS NOT NULL AND {name} IS NOT NULL",
                        "must be empty for an incident figure (scope belongs to aggregates)")
          for name in ("scope_area", "aggregate_kind", "scope_perpetrator", "period_start", "period_end")),
        _ordered("period_start", "period_end"),
    ),
    "incidents": (
        RowRule("date_end", "date_start > date_end", "'is before date_start ' || date_start", "date_end"),
        RowRule("date_precision",
                f"date_start <= date_end AND julianday(date_end) - julianday(date_start) > CASE date_precision {_SPANS} END",
                f"'code ' || date_precision || ' allows at most ' || CASE date_precision {_SPANS} END || "
                "' days between date_start and date_end, not ' || CAST(julianday(date_end) - julianday(date_start) AS INTEGER)",
                "date_precision"),
    ),
    "places": tuple(
        RowRule(name, f"{name} IS NULL AND {_GIVEN} != ''",
                f"'required when the place is geolocated (' || {_GIVEN} || ' given)'", name)
        for name in _GEO),
    "sources": (_ordered("published", "accessed"),),
    "countries": (_ordered("lat_min", "lat_max"), _ordered("lon_min", "lon_max")),
    "changes": (
        _literal_rule("replaced_by", "action = 'merged' AND replaced_by IS NULL", "required when action is 'merged'"),
        _literal_rule("replaced_by", "action != 'merged' AND replaced_by IS NOT NULL", "must be empty unless action is 'merged'"),
    ),
}
