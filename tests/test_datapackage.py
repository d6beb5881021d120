"""datapackage.json: a Frictionless Tabular Data Package of raw/, generated from civcas/schema.py.

It must say what the schema says (regenerate with `make metadata`), and Frictionless must agree with the build:
the real raw files are valid, files the build rejects for a broken rule are invalid, and the CSV variations the
build accepts (BOM, CRLF, line breaks inside cells, columns in another order) are valid.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from conftest import RAW, ROOT, run_build

frictionless = pytest.importorskip("frictionless")

from civcas import datapackage  # noqa: E402
from civcas.schema import TABLES  # noqa: E402

DATAPACKAGE = ROOT / "datapackage.json"


def test_datapackage_json_is_up_to_date_with_the_schema():
    assert DATAPACKAGE.exists(), "datapackage.json is missing: run `make metadata`"
    assert DATAPACKAGE.read_text(encoding="utf-8") == datapackage.render(), \
        "datapackage.json is out of date: run `make metadata`"
    result = subprocess.run([sys.executable, "-m", "civcas.datapackage", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_stale_file_and_a_rewrite_fixes_it(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "datapackage.json"
    stale.write_text(DATAPACKAGE.read_text(encoding="utf-8").replace('"required": true', '"required": false', 1))
    monkeypatch.setattr(datapackage, "DATAPACKAGE", stale)
    assert datapackage.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert datapackage.main([]) == 0
    assert datapackage.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == DATAPACKAGE.read_text(encoding="utf-8")


def test_every_raw_column_is_described_and_no_derived_one():
    """An independent reading of the schema, so a bug in the generator cannot agree with itself."""
    package = json.loads(DATAPACKAGE.read_text(encoding="utf-8"))
    assert package["licenses"][0]["name"] == "CC-BY-4.0"
    assert [r["name"] for r in package["resources"]] == [t.name for t in TABLES]
    types = {"id": "string", "text": "string", "url": "string", "language": "string", "country": "string",
             "integer": "integer", "real": "number", "date": "date", "flag": "boolean"}
    for table, res in zip(TABLES, package["resources"]):
        assert res["path"] == f"raw/{table.name}.csv"
        assert (ROOT / res["path"]).is_file()
        assert res["encoding"] == "utf-8" and res["dialect"]["delimiter"] == ","
        schema = res["schema"]
        assert schema["missingValues"] == [""]
        assert schema["primaryKey"] == [table.pk]
        fields = {f["name"]: f for f in schema["fields"]}
        assert list(fields) == [c.name for c in table.columns if not c.derived]
        for c in table.raw_columns:
            f = fields[c.name]
            constraints = f.get("constraints", {})
            assert f["type"] == types[c.kind], c.name
            assert constraints.get("required", False) == c.required, c.name
            assert constraints.get("enum") == (list(c.values) if c.values else None), c.name
            assert constraints.get("minimum") == c.minimum and constraints.get("maximum") == c.maximum, c.name
            assert f["description"].startswith(c.description)
            if not c.required and c.null_means:
                assert c.null_means in f["description"], c.name
        keys = {(k["fields"][0], k["reference"]["resource"] or table.name, k["reference"]["fields"][0])
                for k in schema.get("foreignKeys", [])}
        expected = {(c.name, *c.references.split(".")) for c in table.raw_columns if c.references}
        assert keys == expected, table.name


def validate(folder):
    report = frictionless.validate(str(folder / "datapackage.json"))
    errors = [(task.name, error.type, getattr(error, "field_name", None), getattr(error, "cell", None))
              for task in report.tasks for error in task.errors]
    return report, errors


def test_frictionless_finds_the_real_raw_files_valid():
    report, errors = validate(ROOT)
    assert report.valid, report.flatten(["taskNumber", "rowNumber", "fieldName", "type", "note"])[:20]
    assert errors == []
    # Every row was read and checked, in every resource.
    for task in report.tasks:
        with open(RAW / f"{task.name}.csv", encoding="utf-8-sig", newline="") as f:
            assert task.stats["rows"] == sum(1 for _ in csv.reader(f)) - 1, task.name


@pytest.fixture
def package_copy(tmp_path):
    """datapackage.json beside a writable copy of raw/, as a downloader would have them."""
    shutil.copy(DATAPACKAGE, tmp_path / "datapackage.json")
    shutil.copytree(RAW, tmp_path / "raw")
    return tmp_path


def read_rows(folder, table):
    with open(folder / "raw" / f"{table}.csv", encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def write_rows(folder, table, rows, *, line_end="\n", bom=False):
    with open(folder / "raw" / f"{table}.csv", "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        csv.writer(f, lineterminator=line_end).writerows(rows)


def set_cell(folder, table, row, column, value):
    rows = read_rows(folder, table)
    rows[row][rows[0].index(column)] = value
    write_rows(folder, table, rows)
    return rows[row][0]


def test_frictionless_reports_a_broken_copy_invalid(package_copy):
    set_cell(package_copy, "incidents", 1, "grading", "probable")                   # not in the vocabulary
    set_cell(package_copy, "places", 1, "geo_precision", "9")                       # not an integer code
    set_cell(package_copy, "figures", 1, "source_id", "no-such-source")             # no such row in sources
    set_cell(package_copy, "figures", 2, "superseded_by", "no-such-figure")         # self-reference, no such row
    set_cell(package_copy, "actors", 1, "parent_id", "no-such-actor")               # self-reference, no such row
    report, errors = validate(package_copy)
    assert not report.valid
    assert ("incidents", "constraint-error", "grading", "probable") in errors
    assert ("places", "constraint-error", "geo_precision", "9") in errors
    assert {(table, kind) for table, kind, *_ in errors if kind == "foreign-key"} == {
        ("figures", "foreign-key"), ("actors", "foreign-key")}
    foreign = [e for task in report.tasks for e in task.errors if e.type == "foreign-key"]
    notes = " ".join(e.note for e in foreign)
    for missing in ("no-such-source", "no-such-figure", "no-such-actor"):
        assert missing in notes
    assert len(errors) == 5, errors
    # The build rejects the same copy.
    assert run_build("--raw", str(package_copy / "raw"), "--check").returncode != 0


@pytest.mark.parametrize("column, value", [
    ("date_start", "2016-02-30"),            # no such date
    ("incident_id", "Not A Slug"),           # id pattern
    ("title", ""),                           # required
])
def test_frictionless_rejects_what_the_build_rejects(package_copy, column, value):
    set_cell(package_copy, "incidents", 3, column, value)
    report, errors = validate(package_copy)
    assert not report.valid
    assert any(table == "incidents" and name == column for table, _, name, _ in errors), errors
    assert run_build("--raw", str(package_copy / "raw"), "--check").returncode != 0


def test_frictionless_accepts_what_the_build_accepts(package_copy):
    """A BOM, Windows line endings, line breaks inside a quoted cell and columns in another order are all fine
    for the build (civcas.validate reads with Python's csv module and matches columns by name); Frictionless
    reads cells the same way and matches columns by name too ("fieldsMatch": "equal")."""
    rows = read_rows(package_copy, "incidents")
    rows[1][rows[0].index("summary")] = 'First line, with a comma.\nSecond "quoted" line.\n\nAfter a blank line.'
    write_rows(package_copy, "incidents", [row[::-1] for row in rows], line_end="\r\n", bom=True)
    report, errors = validate(package_copy)
    assert report.valid, errors
    assert report.tasks[[t.name for t in TABLES].index("incidents")].stats["rows"] == len(rows) - 1
    package = frictionless.Package(str(package_copy / "datapackage.json"))
    first = package.get_resource("incidents").read_rows()[0]
    assert first["summary"].endswith("\n\nAfter a blank line.")
    assert run_build("--raw", str(package_copy / "raw"), "--check").returncode == 0
