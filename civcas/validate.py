"""Row-level validation of the raw CSV files.

Each raw file is streamed once: every cell is parsed by a converter compiled
from its column declaration, and every problem becomes one `Problem`, so a
curator sees all of them in one run. Rules that need more than one row
(unique ids, references, breakdown <= total) are checked in civcas.checks.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

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


class Invalid(ValueError):
    """A cell that cannot be accepted; the message says why."""


def shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
INTEGER = re.compile(r"[+-]?[0-9]+")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LANGUAGE = re.compile(r"[a-z]{2}")
COUNTRY = re.compile(r"[A-Z]{2}")


def _id(text: str) -> str:
    if not SLUG.fullmatch(text):
        raise Invalid("not a slug: use lower-case letters, digits and single hyphens")
    return text


def _integer(text: str) -> int:
    if not INTEGER.fullmatch(text):
        raise Invalid("not a whole number")
    return int(text)


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid("not a number") from None
    if not math.isfinite(value):
        raise Invalid("not a finite number")
    return value


def _date(text: str) -> str:
    if not ISO_DATE.fullmatch(text):
        raise Invalid("not an ISO date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise Invalid("no such date") from None
    return text


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in text):
        raise Invalid("not an absolute http(s) URL")
    return text


def _language(text: str) -> str:
    if not LANGUAGE.fullmatch(text):
        raise Invalid("not an ISO 639-1 two-letter language code")
    return text


def _country(text: str) -> str:
    if not COUNTRY.fullmatch(text):
        raise Invalid("not an ISO 3166-1 alpha-2 country code")
    return text


def _flag(text: str) -> int:
    if text not in ("0", "1"):
        raise Invalid("must be 0 or 1")
    return int(text)


PARSERS: dict[str, Callable[[str], object]] = {
    "id": _id, "text": str, "integer": _integer, "real": _real, "date": _date,
    "url": _url, "language": _language, "country": _country, "flag": _flag,
}


def converter(column: Column) -> Callable[[str], object]:
    """Compile one column's declaration into a function: raw text -> value or Invalid."""
    parse = PARSERS[column.kind]
    allowed = column.values
    lo, hi = column.minimum, column.maximum

    def convert(text: str):
        if text.strip() != text:
            raise Invalid("has leading or trailing spaces")
        if text == "":
            if column.required:
                raise Invalid("required, but empty")
            return None
        value = parse(text)
        if allowed is not None and value not in allowed:
            raise Invalid("not an allowed value; use one of " + ", ".join(map(str, allowed)))
        if lo is not None and value < lo:
            raise Invalid(f"must be at least {lo:g}")
        if hi is not None and value > hi:
            raise Invalid(f"must be at most {hi:g}")
        return value

    return convert


# --- Reading ------------------------------------------------------------------

def _bad_utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield number, f"not valid UTF-8 (byte {raw[e.start:e.start + 1]!r} at position {e.start + 1})"


def read_records(path: Path, shown_path: str, problems: list[Problem]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line the record starts on, {column: text}) for each record.

    Accepts a UTF-8 BOM and CRLF line endings; blank lines are skipped.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                problems.append(Problem(shown_path, 1, "(header)", "file is empty; a header row is required"))
                return
            width = len(header)
            start = reader.line_num + 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    problems.append(Problem(shown_path, start, "(row)", f"malformed CSV: {e}"))
                    return
                if cells and cells != [""] * len(cells):
                    if len(cells) != width:
                        problems.append(Problem(shown_path, start, "(row)",
                                                f"has {len(cells)} cells, the header has {width} ({','.join(cells)[:60]!r})"))
                    else:
                        yield start, dict(zip(header, cells))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        for line, message in _bad_utf8_lines(path):
            problems.append(Problem(shown_path, line, "(file)", message))


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
    # Undecodable bytes are replaced here so the header can still be checked; read_records reports them.
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        return next(csv.reader(f), [])


# --- Rules within one row ---------------------------------------------------------

def _row_rules_figures(row: dict, fail: Callable[[str, str, object], None]) -> None:
    q, lo, hi = row["qualifier"], row["value_min"], row["value_max"]
    if lo is not None and hi is not None and lo > hi:
        fail("value_min", f"is greater than value_max {hi}", lo)
    if q in ("exact", "about") and (lo is None or lo != hi):
        fail("value_max", f"must equal value_min for qualifier {q!r}", hi)
    elif q in OPEN_ENDED and (lo is None or hi is not None):
        fail("value_max", f"must be empty and value_min given for open-ended qualifier {q!r}", hi)
    elif q == "up to" and (lo is not None or hi is None):
        fail("value_min", "must be empty and value_max given for qualifier 'up to'", lo)
    elif q == "range" and (lo is None or hi is None or lo >= hi):
        fail("value_max", "must be greater than value_min for qualifier 'range'", hi)
    if row["incident_id"] is None and row["scope_area"] is None:
        fail("scope_area", "required for an aggregate figure (one with no incident_id)", row["scope_area"])
    if row["incident_id"] is None and row["aggregate_kind"] is None:
        fail("aggregate_kind", "required for an aggregate figure (one with no incident_id)", row["aggregate_kind"])
    if row["incident_id"] is not None:
        for name in ("scope_area", "aggregate_kind", "scope_perpetrator", "period_start", "period_end"):
            if row[name] is not None:
                fail(name, "must be empty for an incident figure (scope belongs to aggregates)", row[name])
    _ordered(row, "period_start", "period_end", fail)


def _row_rules_incidents(row: dict, fail) -> None:
    start, end, precision = row["date_start"], row["date_end"], row["date_precision"]
    if start and end:
        if start > end:
            fail("date_end", f"is before date_start {start}", end)
        elif precision in DATE_PRECISION_MAX_SPAN:
            span = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
            if span > DATE_PRECISION_MAX_SPAN[precision]:
                fail("date_precision", f"code {precision} allows at most {DATE_PRECISION_MAX_SPAN[precision]} days "
                                       f"between date_start and date_end, not {span}", precision)


def _row_rules_places(row: dict, fail) -> None:
    geo = ("latitude", "longitude", "geo_precision", "geo_method")
    given = [name for name in geo if row[name] is not None]
    if given and len(given) != len(geo):
        for name in geo:
            if row[name] is None:
                fail(name, "required when the place is geolocated (" + ", ".join(given) + " given)", row[name])


def _row_rules_sources(row: dict, fail) -> None:
    _ordered(row, "published", "accessed", fail)


def _row_rules_countries(row: dict, fail) -> None:
    _ordered(row, "lat_min", "lat_max", fail)
    _ordered(row, "lon_min", "lon_max", fail)


def _ordered(row: dict, first: str, second: str, fail) -> None:
    if row[first] is not None and row[second] is not None and row[first] > row[second]:
        fail(second, f"is before {first} {row[first]}", row[second])


def _row_rules_changes(row: dict, fail) -> None:
    if row["action"] == "merged" and row["replaced_by"] is None:
        fail("replaced_by", "required when action is 'merged'", row["replaced_by"])
    elif row["action"] != "merged" and row["replaced_by"] is not None:
        fail("replaced_by", "must be empty unless action is 'merged'", row["replaced_by"])


ROW_RULES = {
    "changes": _row_rules_changes,
    "figures": _row_rules_figures,
    "incidents": _row_rules_incidents,
    "places": _row_rules_places,
    "sources": _row_rules_sources,
    "countries": _row_rules_countries,
}
