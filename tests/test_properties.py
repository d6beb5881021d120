"""Property-based tests of the build: no edit a curator can make gets a broken database through.

Hypothesis starts from a valid raw folder (real data: a cut of raw/, its first incidents and every row
they reach, conftest.cut_raw; or one generated from the schema by bench/generate.py with a random seed and
size), applies a random sequence of edits of every kind a curator
or their tools can make (cell edits, deleted, duplicated and truncated rows, reordered and renamed columns,
other encodings, stray bytes) and runs the build. Either the build succeeds and the database satisfies every
documented rule, re-checked from the outside by tests/invariants.py, or it fails with nothing but well-formed
`FILE:LINE: column: message` lines and the previous database byte-identical.

`make test` runs a bounded number of examples; `make test-long` (HYPOTHESIS_PROFILE=long) runs many more.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis import event, given

from conftest import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generate import Spec, generate  # noqa: E402
from civcas.build import main as build_main  # noqa: E402
from civcas.schema import TABLES  # noqa: E402
from invariants import violations  # noqa: E402

settings.register_profile("default", max_examples=int(os.environ.get("CIVCAS_PROPERTY_EXAMPLES", "30")),
                          deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=600, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

FILES = [t.name for t in TABLES]
PROBLEM = re.compile(r"^(?P<path>.+/[a-z_]+\.csv):(?P<line>\d+): (?P<column>[^:]+|\(file\)|\(header\)|\(row\)): (?P<message>.+)$")
SUMMARY = re.compile(r"^\d+ problems? found; .+ left unchanged$")

# Values a cell can be given: blank, whitespace, wrong kinds, extremes, markup, ids of other rows.
NASTY = st.sampled_from([
    "", " ", "  padded  ", "0", "-1", "1.5", "1e3", "99999999999999999999", "NaN", "inf", "abc", "2016-02-30",
    "2016-13-01", "16-11-08", "2016/11/08", "٣", "x" * 5000, "a,b", 'say "hi"', "line\nbreak", "<script>alert(1)</script>",
    "javascript:alert(1)", "http://", "https://example.org/a b", "Sy", "sy", "SYR", "exact", "at least", "range",
    "up to", "confirmed", "running total", "batch", "known", "credible", "1", "2", "8", "9", "99", "-90.5", "181",
    "al-heisha", "sohr", "us-led-coalition", "sy-2016-11-08-al-heisha", "Al-Heisha", "double--hyphen", "-lead",
])


def read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def write(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


@st.composite
def mutation(draw):
    kind = draw(st.sampled_from(["cell", "cell", "cell", "cell", "reference", "delete", "duplicate", "swap-columns",
                                 "rename-column", "truncate", "encoding", "bytes", "blank-line", "extra-cell"]))
    return (kind, draw(st.sampled_from(FILES)), draw(st.integers(0, 10 ** 6)), draw(st.integers(0, 10 ** 6)),
            draw(NASTY), draw(st.sampled_from(["latin-1", "utf-16", "utf-8-sig", "cp1256"])))


def apply(raw: Path, m) -> None:
    kind, name, a, b, value, encoding = m
    path = raw / f"{name}.csv"
    if kind in ("truncate", "encoding", "bytes"):
        data = path.read_bytes()
        if kind == "truncate":
            path.write_bytes(data[: a % (len(data) + 1)])
        elif kind == "encoding":
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                return  # already in another encoding
            path.write_bytes(text.encode(encoding, errors="replace"))
        else:
            cut = a % (len(data) + 1)
            path.write_bytes(data[:cut] + bytes([0x80 + b % 0x80, 0x00 if b % 7 == 0 else 0xff]) + data[cut:])
        return
    try:
        rows = read(path)
    except (UnicodeDecodeError, csv.Error):
        return  # an earlier mutation already broke this file
    if not rows:
        return
    header, body = rows[0], rows[1:]
    if kind in ("cell", "reference", "delete", "duplicate", "extra-cell") and not body:
        return
    i, j = (a % len(body) if body else 0), b % len(header)
    if kind in ("cell", "reference") and not body[i]:
        return  # a blank line has no cells
    if kind == "cell":
        body[i][j % len(body[i])] = value
    elif kind == "reference":  # a real id of some table, in a column that may or may not take it
        try:
            other = read(raw / f"{FILES[b % len(FILES)]}.csv")
        except (OSError, UnicodeDecodeError, csv.Error):
            return
        if len(other) > 1 and other[1 + a % (len(other) - 1)]:
            body[i][j % len(body[i])] = other[1 + a % (len(other) - 1)][0]
    elif kind == "delete":
        del body[i]
    elif kind == "duplicate":
        body.insert(i, list(body[i]))
    elif kind == "swap-columns":  # the same reorder in every row: still a valid file
        k = (j + 1 + a % max(1, len(header) - 1)) % len(header)
        for row in [header, *body]:
            if len(row) > max(j, k):
                row[j], row[k] = row[k], row[j]
    elif kind == "rename-column":
        header[j] = value.replace("\n", " ") or "renamed"
    elif kind == "blank-line":
        body.insert(i, [])
    elif kind == "extra-cell":
        body[i].append(value)
    write(path, [header, *body])


def valid_folder(tmp: Path, source, cut_raw: Path) -> Path:
    raw = tmp / "raw"
    if source == "real":
        shutil.copytree(cut_raw, raw)
    else:
        seed, incidents = source
        generate(Spec(incidents, seed=seed), raw)
        for extra in raw.glob("*.json"):
            extra.unlink()
    return raw


def run_build(raw: Path, db: Path) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = build_main(["--raw", str(raw), "--db", str(db)])
    return code, err.getvalue().splitlines()


SOURCES = st.one_of(st.just("real"), st.tuples(st.integers(1, 10 ** 6), st.integers(3, 40)))


@given(source=SOURCES, mutations=st.lists(mutation(), min_size=1, max_size=4))
def test_any_edit_either_builds_a_valid_database_or_is_reported_and_changes_nothing(cut_raw, cut_db, source,
                                                                                     mutations):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = valid_folder(tmp, source, cut_raw)
        db = tmp / "civcas.db"
        if source == "real":  # the run's build of the same cut
            shutil.copyfile(cut_db, db)
        else:
            code, lines = run_build(raw, db)
            assert code == 0, lines  # the starting point is valid
        published = hashlib.sha256(db.read_bytes()).hexdigest()
        for m in mutations:
            apply(raw, m)
        code, lines = run_build(raw, db)
        event("built" if code == 0 else "rejected")
        if code == 0:
            assert violations(db) == [], (mutations, violations(db)[:5])
        else:
            assert code == 1, (code, lines)
            *problems, summary = lines
            assert problems and SUMMARY.match(summary), lines
            for line in problems:
                assert PROBLEM.match(line), f"not a FILE:LINE: column: message line: {line!r}"
                assert "Traceback" not in line
            assert hashlib.sha256(db.read_bytes()).hexdigest() == published, "a failed build changed the database"
            assert not list(tmp.glob(".civcas-*.building")), "a failed build left its temporary file"


def test_the_whole_of_raw_satisfies_every_rule(built_db):
    """The session's build of the whole of raw/ (the property tests' real data is a cut of it)."""
    assert violations(built_db) == []


@given(source=SOURCES)
def test_every_generated_folder_builds_and_satisfies_every_rule(cut_raw, source):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = valid_folder(tmp, source, cut_raw)
        code, lines = run_build(raw, tmp / "civcas.db")
        assert code == 0, lines[:5]
        assert violations(tmp / "civcas.db") == []
