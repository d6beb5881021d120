"""Stream one raw CSV into its table: parse, validate row by row, insert in batches.

Rows are inserted in file order, so a row's rowid maps to the line it started
on through `LoadedTable.lines` (4 bytes a row); set-based checks in SQL can
then name the line of any row they reject without keeping ids in memory.
"""
from __future__ import annotations

import sqlite3
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from .schema import Table
from .validate import (ROW_RULES, Invalid, Problem, check_header, converter, read_header,
                       read_records, shown)

BATCH = 5000


@dataclass
class LoadedTable:
    table: Table
    path: str                              # as shown in messages, e.g. raw/incidents.csv
    lines: array = field(default_factory=lambda: array("I"))  # rowid - 1 -> line
    rejected: set = field(default_factory=set)  # ids of rows not loaded because they had problems
    complete: bool = True  # False when the file could not be read to its end

    def line_of(self, rowid: int) -> int:
        return self.lines[rowid - 1]


def load_table(conn: sqlite3.Connection, table: Table, raw_dir: Path, shown_dir: str,
               problems: list[Problem]) -> LoadedTable:
    path = raw_dir / f"{table.name}.csv"
    loaded = LoadedTable(table, f"{shown_dir}/{table.name}.csv")
    if not path.is_file():
        problems.append(Problem(loaded.path, 1, "(file)", "file is missing"))
        loaded.complete = False
        return loaded
    if not check_header(table, read_header(path), loaded.path, problems):
        loaded.complete = False
        return loaded

    columns = table.raw_columns
    names = [c.name for c in columns]
    converters = [(c.name, converter(c)) for c in columns]
    row_rule = ROW_RULES.get(table.name)
    pk = table.pk
    insert = (f'INSERT INTO "{table.name}" ({", ".join(f"[{n}]" for n in names)}) '
              f'VALUES ({", ".join("?" for _ in names)})')
    batch: list[tuple] = []
    batch_lines: list[int] = []

    before = len(problems)
    for line, record in read_records(path, loaded.path, problems):
        row = {}
        bad = False
        for name, convert in converters:
            text = record[name]
            try:
                row[name] = convert(text)
            except Invalid as e:
                problems.append(Problem(loaded.path, line, name, f"{e} ({shown(text)})"))
                row[name] = None
                bad = True
        if row_rule is not None and not bad:  # rules across cells need every cell parsed
            def fail(column, message, value, _line=line):
                nonlocal bad
                bad = True
                problems.append(Problem(loaded.path, _line, column, f"{message} ({shown(value)})"))
            row_rule(row, fail)
        if bad:
            if row[pk] is not None:
                loaded.rejected.add(row[pk])
            continue
        batch.append(tuple(row[n] for n in names))
        batch_lines.append(line)
        if len(batch) >= BATCH:
            _flush(conn, insert, table, loaded, batch, batch_lines, problems)
            batch, batch_lines = [], []
    _flush(conn, insert, table, loaded, batch, batch_lines, problems)
    loaded.complete = not any(p.column in ("(file)", "(header)") or p.message.startswith("malformed CSV")
                              for p in problems[before:])
    return loaded


def _flush(conn, insert, table: Table, loaded: LoadedTable, batch, batch_lines, problems) -> None:
    if not batch:
        return
    conn.execute("SAVEPOINT batch")
    try:
        conn.executemany(insert, batch)
    except sqlite3.IntegrityError:
        # Only a repeated primary key gets here (everything else was validated):
        # redo the batch row by row to name the line of each duplicate.
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
        pk_index = [c.name for c in table.raw_columns].index(table.pk)
        for values, line in zip(batch, batch_lines):
            try:
                conn.execute(insert, values)
            except sqlite3.IntegrityError:
                key = values[pk_index]
                (first,) = conn.execute(f'SELECT rowid FROM "{table.name}" WHERE [{table.pk}] = ?', (key,)).fetchone()
                problems.append(Problem(loaded.path, line, table.pk,
                                        f"duplicate id, first used on line {loaded.line_of(first)} ({shown(key)})"))
            else:
                loaded.lines.append(line)
        return
    conn.execute("RELEASE batch")
    loaded.lines.extend(batch_lines)
