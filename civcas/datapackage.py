"""Generate datapackage.json (a Frictionless Tabular Data Package) from the schema.

    python -m civcas.datapackage          # rewrite datapackage.json
    python -m civcas.datapackage --check  # exit 1 if it is out of date

datapackage.json describes the curated CSV files in raw/ (one resource per
table of civcas.schema.TABLES) so that any Frictionless tool, or a person,
can read and validate them without this code: field types, constraints,
primary and foreign keys and the description of every column, including what
an empty cell means. Derived columns are computed by the build and are not in
raw/, so they are left out. Like metadata.yml, it is never edited by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .metadata import SITE, column_text
from .release import current_release
from .schema import SCHEMA_VERSION, TABLES, Column, Table
from .validate import COUNTRY, LANGUAGE, SLUG

ROOT = Path(__file__).resolve().parent.parent
DATAPACKAGE = ROOT / "datapackage.json"

# Column kind -> Frictionless field type (and format). A flag is 0/1 in raw/: a boolean whose true and false
# values are spelled "1" and "0".
FIELD_TYPES = {
    "id": {"type": "string"},
    "text": {"type": "string"},
    "url": {"type": "string", "format": "uri"},
    "language": {"type": "string"},
    "country": {"type": "string"},
    "integer": {"type": "integer"},
    "real": {"type": "number"},
    "date": {"type": "date"},
    "flag": {"type": "boolean", "trueValues": ["1"], "falseValues": ["0"]},
}

# The same patterns civcas.validate applies (Frictionless anchors a pattern at both ends, like re.fullmatch).
PATTERNS = {"id": SLUG.pattern, "language": LANGUAGE.pattern, "country": COUNTRY.pattern}

DESCRIPTION = (
    "An open dataset of civilian harm from air strikes that you can check number by number. Every number is a "
    "claim: who said it (a monitor, a military, the UN, a study, a witness), where we read it (a source with its "
    "address and date) and the words it rests on (a short quote). Disagreeing claims sit side by side. These are "
    "the curated CSV files; the published SQLite database adds columns derived from them (incident casualty "
    "ranges, place names, counts), documented in docs/data-dictionary.md. An empty cell means unknown or not "
    "applicable, as each column's description says; it never means zero."
)

# CSV as civcas.validate reads it: comma-separated, a header row, cells quoted with '"' (doubled inside a cell)
# when they hold a comma, a quote or a line break. Cells may span several lines; Frictionless reads the files with
# Python's csv module, which handles that, and counts rows (not lines) in its error reports.
DIALECT = {"header": True, "delimiter": ",", "quoteChar": '"', "doubleQuote": True}


def field(column: Column) -> dict:
    out = {"name": column.name, **FIELD_TYPES[column.kind], "description": column_text(column)}
    constraints = {}
    if column.required:
        constraints["required"] = True
    if column.kind in PATTERNS:
        constraints["pattern"] = PATTERNS[column.kind]
    if column.values is not None:
        constraints["enum"] = list(column.values)
    if column.minimum is not None:
        constraints["minimum"] = _number(column.minimum)
    if column.maximum is not None:
        constraints["maximum"] = _number(column.maximum)
    if constraints:
        out["constraints"] = constraints
    return out


def _number(value: float):
    return int(value) if float(value).is_integer() else value


def foreign_keys(table: Table) -> list[dict]:
    keys = []
    for column, target_table, target_column in table.foreign_keys:
        if table.column(column).derived:
            continue
        # A reference to the table itself (actors.parent_id, sources.cited_in, figures.superseded_by) names the
        # resource "", as the Table Schema specification requires; Frictionless resolves it against the same file.
        resource = "" if target_table == table.name else target_table
        keys.append({"fields": [column], "reference": {"resource": resource, "fields": [target_column]}})
    return keys


def resource(table: Table) -> dict:
    schema = {
        "fields": [field(c) for c in table.raw_columns],
        # The build matches a raw file's columns to the schema by name, in any order, and rejects missing and
        # unknown columns; "equal" (Table Schema v2, Frictionless >= 5.20) is that rule. Readers that predate
        # it ignore the property and match by position, which the files in raw/ (in schema order) also pass.
        "fieldsMatch": "equal",
        "missingValues": [""],
        "primaryKey": [table.pk],
    }
    keys = foreign_keys(table)
    if keys:
        schema["foreignKeys"] = keys
    return {
        "name": table.name,
        "path": f"raw/{table.name}.csv",
        "profile": "tabular-data-resource",
        "title": table.name,
        "description": table.description,
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "dialect": DIALECT,
        "schema": schema,
    }


def build_datapackage() -> dict:
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    return {
        "profile": "tabular-data-package",
        "name": "civcas",
        "title": site["title"],
        "description": DESCRIPTION,
        # The data's release, as numbered in CHANGELOG.md (build_info.release in the database).
        "version": current_release() or SCHEMA_VERSION,
        "keywords": ["civilian harm", "air strikes", "casualties", "Iraq", "Syria", "conflict data"],
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0",
                      "path": site["license_url"]}],
        "sources": [{"title": "The documents listed in raw/sources.csv (address, publisher, date of each); "
                              "cite the original source of each figure too",
                     "path": "raw/sources.csv"}],
        "contributors": [{"title": "civcas curators", "role": "author"}],
        "resources": [resource(t) for t in TABLES if t.curated],
    }


def render() -> str:
    return json.dumps(build_datapackage(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if datapackage.json is out of date")
    args = parser.parse_args(argv)
    text = render()
    current = DATAPACKAGE.read_text(encoding="utf-8") if DATAPACKAGE.exists() else None
    if current == text:
        return 0
    if args.check:
        print("out of date (run `make metadata`): datapackage.json", file=sys.stderr)
        return 1
    DATAPACKAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
