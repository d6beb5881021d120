"""Rewrite tests/pins/*.csv from a database built from raw/: run after a deliberate change, review the diff.

    .venv/bin/python build.py && .venv/bin/python tests/pins/update.py [civcas.db]
"""
from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pins.facts import INCIDENT_FACTS_SQL, SERIES_SQL, rows_as_text  # noqa: E402

HERE = Path(__file__).resolve().parent


def write(name: str, rows: list[dict[str, str]]) -> None:
    with open(HERE / name, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    conn = sqlite3.connect(sys.argv[1] if len(sys.argv) > 1 else "civcas.db")
    write("incidents.csv", rows_as_text(conn, INCIDENT_FACTS_SQL))
    write("admitted_series.csv", rows_as_text(conn, SERIES_SQL))
