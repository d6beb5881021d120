"""Every raw CSV passes csvkit's checks, so curators can use csvkit on raw/ without surprises.

Runs the csvkit command-line tools installed beside this Python (the project's venv).
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from civcas import schema
from conftest import RAW, run_build

BIN = Path(sys.executable).parent
RAW_FILES = sorted(RAW.glob("*.csv"))


def csvkit(tool: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    path = BIN / tool
    if not path.exists():
        pytest.skip(f"{tool} is not installed beside {sys.executable}")
    return subprocess.run([str(path), *map(str, args)], input=stdin, capture_output=True, timeout=120)


def parse_strictly(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and records, failing on any CSV or UTF-8 error (csvclean does not catch an unterminated quote)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        header = next(reader)
        rows = [cells for cells in reader if cells]
    return header, rows


def test_every_table_has_a_raw_file():
    assert {p.stem for p in RAW_FILES} >= {t.name for t in schema.TABLES}


@pytest.mark.parametrize("path", RAW_FILES, ids=lambda p: p.name)
def test_csvclean_finds_no_errors(path):
    result = csvkit("csvclean", "--length-mismatch", path)
    # csvkit 2.x: errors go to stderr as CSV (line_number,msg,...) and the exit code is 1
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    # and it had nothing to fix: its output is the same data
    out = list(csv.reader(io.StringIO(result.stdout.decode("utf-8"), newline="")))
    header, rows = parse_strictly(path)
    assert out == [header, *rows]


@pytest.mark.parametrize("path", RAW_FILES, ids=lambda p: p.name)
def test_parses_strictly_with_consistent_row_lengths(path):
    header, rows = parse_strictly(path)
    assert header and all(header), f"{path.name}: blank column name"
    bad = [n for n, cells in enumerate(rows, start=1) if len(cells) != len(header)]
    assert not bad, f"{path.name}: records {bad} do not have {len(header)} cells"


# csvstat (like csvlook, csvsort...) sniffs the dialect from the first 1024 bytes by default and can guess
# wrong: the ' | '-separated name variants and the single quotes in places.csv make it pick another
# delimiter and quote character. raw/ is plain comma-separated CSV with double quotes, so say so: -y 0.
NO_SNIFF = ("--snifflimit", "0")


@pytest.mark.parametrize("path", RAW_FILES, ids=lambda p: p.name)
def test_csvstat_reads_it(path):
    count = csvkit("csvstat", *NO_SNIFF, "--count", path)
    assert count.returncode == 0, count.stderr.decode()
    assert int(count.stdout) == len(parse_strictly(path)[1])
    full = csvkit("csvstat", *NO_SNIFF, path)
    assert full.returncode == 0, full.stderr.decode()
    assert b"Traceback" not in full.stderr


def test_csvclean_check_is_not_vacuous(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2,3\n4\n", encoding="utf-8")
    result = csvkit("csvclean", "--length-mismatch", bad)
    assert result.returncode != 0
    assert b"Expected 2 columns, found 3 columns" in result.stderr


def test_in2csv_json_round_trip_builds_the_same_data(raw_copy, tmp_path):
    """A curator may prepare rows as JSON and convert them with in2csv: the result builds unchanged."""
    header, rows = parse_strictly(raw_copy / "figures.csv")
    as_json = tmp_path / "figures.json"
    as_json.write_text(json.dumps([dict(zip(header, cells)) for cells in rows], ensure_ascii=False), encoding="utf-8")
    before = tmp_path / "before.db"
    assert run_build("--raw", str(raw_copy), "--db", str(before)).returncode == 0

    result = csvkit("in2csv", "--no-inference", "--format", "json", as_json)
    assert result.returncode == 0, result.stderr.decode()
    (raw_copy / "figures.csv").write_bytes(result.stdout)
    after = tmp_path / "after.db"
    built = run_build("--raw", str(raw_copy), "--db", str(after))
    assert built.returncode == 0, built.stderr

    def dump(db: Path) -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT * FROM figures ORDER BY figure_id").fetchall()

    assert dump(after) == dump(before)
