"""docs/curating.md works as written: its commands, run in order on a scratch copy of raw/, add the example
incident, and print what the page shows.

The page is the single source: the sheets of the example workbook are its "Sheet `name`" tables (turned on
their side), and the commands are every ```console block (lines starting with "$ ", continued by "> "), run
in one bash session from the root of the checkout. Typing the workbook in a spreadsheet program is the one
step done here instead, with openpyxl, after the first block (the scratch copy) as the page says.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import RAW, ROOT

from civcas.schema import BY_NAME

DOC = ROOT / "docs" / "curating.md"
MARK = "@@curating-step@@"


def console_blocks(text: str) -> list[list[tuple[str, str]]]:
    """Each ```console block as [(command, expected output)]."""
    blocks = []
    for body in re.findall(r"^```console\n(.*?)^```", text, flags=re.S | re.M):
        steps: list[list] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], []])
            elif line.startswith("> ") and steps and not steps[-1][1]:
                steps[-1][0] += "\n" + line[2:]
            else:
                assert steps, f"output before any command in a console block: {line!r}"
                steps[-1][1].append(line)
        blocks.append([(command, "\n".join(output)) for command, output in steps])
    return blocks


def sheets(text: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """{sheet: (columns, rows)} from the '### Sheet `name`' tables, each turned back upright."""
    out = {}
    for name, table in re.findall(r"^### Sheet `(\w+)`\n\n((?:\|.*\|\n)+)", text, flags=re.M):
        lines = [[cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
                 for line in table.splitlines()]
        header, _, *body = lines
        assert header[0] == "column" and all(h == f"row {i}" for i, h in enumerate(header[1:], 1)), header
        columns = [line[0] for line in body]
        rows = [[line[i] for line in body] for i in range(1, len(header))]
        out[name] = (columns, rows)
    return out


def spreadsheet_value(kind: str, text: str):
    """What a spreadsheet cell holds once typed: numbers as numbers, dates as dates, the rest as text."""
    if text == "":
        return None
    if kind in ("integer", "flag"):
        return int(text)
    if kind == "real":
        return float(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text


def normalise(output: str) -> str:
    """Counts change as raw/ grows: compare everything but the numbers."""
    return "\n".join(re.sub(r"\d+", "N", line.rstrip()) for line in output.strip("\n").splitlines())


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_example_workbook_has_every_raw_column_in_order(doc_text):
    found = sheets(doc_text)
    assert list(found) == ["countries", "actors", "sources", "places", "incidents", "figures", "changes"]
    for name, (columns, rows) in found.items():
        assert columns == [c.name for c in BY_NAME[name].raw_columns], name
        assert rows and all(len(row) == len(columns) for row in rows)


def test_the_example_is_obviously_fictitious(doc_text):
    """Every id the example adds says 'example', every address is on example.org, the country is the
    user-assigned code XX: nothing in it can pass for a real record."""
    for name, (columns, rows) in sheets(doc_text).items():
        table = BY_NAME[name]
        for row in rows:
            values = dict(zip(columns, row))
            for column in table.raw_columns:
                value = values[column.name]
                if not value:
                    continue
                if column.kind == "id":
                    assert value.startswith("example"), (name, column.name, value)
                elif column.kind == "url":
                    assert value.startswith("https://example.org/"), (name, column.name, value)
                elif column.kind == "country":
                    assert value == "XX", (name, column.name, value)

def test_the_example_is_not_in_raw(doc_text):
    """The example is run in a scratch copy only: none of its records may reach the real raw/."""
    for name, (columns, rows) in sheets(doc_text).items():
        pk = BY_NAME[name].pk
        with open(RAW / f"{name}.csv", encoding="utf-8-sig", newline="") as f:
            ids = {record[pk] for record in csv.DictReader(f)}
        for row in rows:
            assert dict(zip(columns, row))[pk] not in ids, (name, row[0])


def make_workbook(doc_text: str, path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, (columns, rows) in sheets(doc_text).items():
        sheet = workbook.create_sheet(name)
        sheet.append(columns)
        kinds = [BY_NAME[name].column(c).kind for c in columns]
        for row in rows:
            sheet.append([spreadsheet_value(kind, text) for kind, text in zip(kinds, row)])
    workbook.save(path)


def raw_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(RAW.glob("*.csv")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_the_documented_commands_add_the_example_incident(doc_text, tmp_path):
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the page's commands use the project's .venv (make install)")
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    blocks = console_blocks(doc_text)
    assert len(blocks) >= 5
    commands = [command for block in blocks for command, _ in block]
    for expected in ("make check", "make build"):
        assert expected in commands
    assert any("in2csv" in command for command in commands)

    workbook = tmp_path / "example-incident.xlsx"
    make_workbook(doc_text, workbook)
    script = ["set -euo pipefail", "exec 2>&1"]  # one stream, so each command's messages stay in order
    steps = []
    for number, block in enumerate(blocks):
        for command, output in block:
            script += [f"echo '{MARK}'", command]
            steps.append((command, output))
        if number == 0:  # the page: "Save the workbook as example-incident.xlsx in the scratch folder."
            script.append(f'cp "{workbook}" example-incident.xlsx')
    script.append(f'echo "{MARK} $PWD"')
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    before = raw_digest()
    env = {**os.environ, "TMPDIR": str(scratch_tmp)}
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):  # run as a curator would, not as a sub-make
        env.pop(name, None)
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    combined = result.stdout + result.stderr
    assert result.returncode == 0, combined[-3000:]
    assert raw_digest() == before, "the example touched the real raw/"

    parts = result.stdout.split(MARK)
    assert len(parts) == len(steps) + 2, result.stdout[-2000:]
    scratch = Path(parts[-1].strip())
    assert scratch.is_relative_to(scratch_tmp)
    for (command, expected), got in zip(steps, parts[1:-1]):
        assert normalise(got) == normalise(expected), f"$ {command}\n--- documented:\n{expected}\n--- real:\n{got}"

    conn = sqlite3.connect(f"file:{scratch / 'civcas.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        incident = conn.execute("SELECT * FROM incidents WHERE incident_id = 'example-incident'").fetchone()
        assert incident is not None, "the example incident is not in the built database"
        assert (incident["place"], incident["country"], incident["latitude"], incident["longitude"]) == (
            "Example Village", "XX", 0.5, 0.25)
        assert (incident["civilians_killed_min"], incident["civilians_killed_max"]) == (1, 3)
        assert (incident["claimants_count"], incident["sources_count"], incident["provisional"]) == (2, 1, 0)
        figures = conn.execute("SELECT figure_id, value_min, value_max, qualifier FROM figures "
                               "WHERE incident_id = 'example-incident' ORDER BY figure_id").fetchall()
        assert [tuple(f) for f in figures] == [("example-incident-air-force-killed", 1, None, "at least"),
                                               ("example-incident-monitor-killed", 3, 3, "exact")]
        # Every row of raw/ is there too, and the sheets' rows besides: the example only added.
        for name, (_, rows) in sheets(doc_text).items():
            (count,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            with open(RAW / f"{name}.csv", encoding="utf-8-sig", newline="") as f:
                assert count == sum(1 for _ in csv.DictReader(f)) + len(rows), name
    finally:
        conn.close()
