"""Generate a synthetic raw/ folder that passes civcas validation, at any size.

    python -m bench.generate --incidents N [--figures-per-incident F] [--out DIR] [--seed S]

The headers are Table.raw_columns from civcas.schema and every controlled value
is drawn from the column's declared vocabulary, so the generator follows the
schema. An optional column it does not know is left empty (with a warning); a
required one stops it with a clear error instead of writing files the build
would reject.

Sizes for N incidents: ~N/10 places, ~N/5 sources, round(F*N) figures (2% of
them aggregate figures with a scope instead of an incident, 1 in 20 incident
figures superseded by a revision), ~N/2 statements, ~N/100 discrepancies, up to
2,000 actors. Text lengths follow the real data: titles ~50 characters,
summaries ~280, quotes ~135-150, so full-text indexing costs what it would. Every
choice comes from one seeded random.Random, so the same parameters always give
the same bytes. Files are written row by row with the csv module; only place
names, actor ids and the per-incident figure counts (2 bytes an incident) are
held in memory.

`ensure_raw` caches the folder under the work directory keyed by the
parameters, the generator version and the schema's raw headers, so reruns skip
generation; the folder is written under a temporary name and renamed when
complete, so an interrupted run never leaves a half-written cache behind.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import random
import re
import shutil
import sys
import time
from array import array
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

from civcas.schema import (ACTORS, AGGREGATE_KINDS, CHANGES, COUNTRIES, DATE_PRECISION_MAX_SPAN, DISCREPANCIES, FIGURES, INCIDENTS, OPEN_ENDED,
                           PLACES, SOURCES, STATEMENTS, TABLES, Table)

GENERATOR_VERSION = 4
AGGREGATE_KIND_NAMES = tuple(AGGREGATE_KINDS)
DEFAULT_SEED = 20161111
AGGREGATE_SHARE = 0.02
SUPERSEDED_SHARE = 0.05

# Real bounding boxes (the ones in raw/countries.csv) so coordinates pass the country-bounds check.
COUNTRY_ROWS = [
    ("SY", "Syria", "سوريا", 32.31, 37.32, 35.7, 42.38),
    ("IQ", "Iraq", "العراق", 29.06, 37.39, 38.79, 48.61),
    ("US", "United States", "", 24.52, 49.38, -124.77, -66.95),
    ("GB", "United Kingdom", "", 49.9, 60.85, -8.65, 1.77),
    ("FR", "France", "", 41.33, 51.12, -5.14, 9.56),
    ("RU", "Russia", "Россия", 41.19, 81.86, 19.64, 180.0),
    ("TR", "Turkey", "Türkiye", 35.81, 42.11, 25.66, 44.82),
    ("JO", "Jordan", "الأردن", 29.18, 33.37, 34.96, 39.3),
]
PLACE_COUNTRIES = ("SY", "IQ")
ADMIN1 = {
    "SY": ["Raqqa", "Aleppo", "Idlib", "Deir ez-Zor", "Hasakah", "Hama", "Homs", "Daraa", "Rif Dimashq", "Latakia"],
    "IQ": ["Nineveh", "Anbar", "Salah ad-Din", "Kirkuk", "Diyala", "Baghdad", "Erbil", "Babil"],
}
PLACE_PREFIXES = ["al-", "Tal ", "Deir ", "Ain ", "Kafr ", "Abu ", "Jisr ", "Khirbet ", "Hamam ", "Ras ", "", "", "", ""]
SYLLABLES = ["ha", "ra", "qa", "mu", "sul", "hei", "sha", "ba", "dar", "kha", "zo", "ri", "ya", "fal", "lu",
             "jah", "tab", "qi", "ma", "shi", "dun", "bab", "nim", "rud", "wa", "sin", "jar", "hol", "tar", "kan"]
DOMAIN_WORDS = (
    "the a of in and to on was were said killed civilians strike air strikes coalition people children women "
    "family home house village town city near north south east west market mosque school hospital bakery "
    "residents according monitor report reported witnesses local activists sources at least more than about "
    "dead wounded injured bodies rubble night morning evening raid jets aircraft drone bombed targeted "
    "fighters group militants forces government ministry spokesman statement confirmed denied investigating "
    "allegation credible assessment responsibility area district province governorate observatory human rights "
    "rescue workers civil defence neighbourhood displaced camp road bridge car vehicle building apartment "
    "killing toll rose including among several dozens many members relatives victims survivors neighbours "
    "army operation campaign against territory control held front line shelling artillery rocket missile").split()
TITLE_PHRASES = ["near the market", "hits a family home", "on a crowded street", "during evening prayers",
                 "on a residential block", "near a school", "on a bakery queue", "on displaced families",
                 "in the old city", "on farm buildings", "on a fuel convoy", "on a hospital compound"]
PUBLISHERS = ["BBC", "Reuters", "Associated Press", "Agence France-Presse", "Al Jazeera", "The Guardian",
              "The New York Times", "The Washington Post", "Syrian Observatory for Human Rights", "Airwars",
              "Amnesty International", "Human Rights Watch", "CJTF-OIR", "US Central Command", "UK Ministry of Defence",
              "Russian Ministry of Defence", "UN OHCHR", "Iraqi Ministry of Defence", "Rudaw", "Enab Baladi",
              "Syrian Network for Human Rights", "Raqqa is Being Slaughtered Silently", "Anadolu Agency", "Daily Kos",
              "Middle East Eye", "The Independent", "Le Monde", "Der Spiegel", "Al-Monitor", "Kurdistan 24"]
AUTHORS = ["Brett Wilkins", "Anne Barnard", "Martin Chulov", "Rania Abouzeid", "Chris Woods", "Azmat Khan",
           "Anand Gopal", "Samer al-Ahmed", "Lina Sinjab", "Patrick Cockburn", "Rami Abdulrahman", "Ben Hubbard"]
SCOPE_AREAS = ["Syria", "Iraq", "Syria and Iraq", "Raqqa governorate", "Mosul", "West Mosul", "Raqqa city",
               "Deir ez-Zor governorate", "Anbar province", "Idlib governorate", "Aleppo governorate"]
INCIDENT_METRICS = ("civilians_killed", "civilians_injured", "women_killed", "children_killed")


@dataclass(frozen=True)
class Spec:
    incidents: int
    figures_per_incident: float = 3.0
    seed: int = DEFAULT_SEED

    @property
    def places(self) -> int:
        return max(2, self.incidents // 10)

    @property
    def sources(self) -> int:
        return max(5, self.incidents // 5)

    @property
    def actors(self) -> int:
        return max(60, min(2000, self.incidents // 500))

    @property
    def figures(self) -> int:
        return max(self.incidents, round(self.incidents * self.figures_per_incident))

    @property
    def aggregates(self) -> int:
        return min(self.figures - self.incidents, max(2, round(self.figures * AGGREGATE_SHARE)))

    def key(self) -> str:
        """Cache key: the parameters, the generator version and the raw headers of the schema."""
        headers = {t.name: [(c.name, c.kind, c.required, c.references) for c in t.raw_columns] for t in TABLES}
        blob = json.dumps({"spec": asdict(self), "version": GENERATOR_VERSION, "headers": headers}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def dirname(self) -> str:
        fpi = f"{self.figures_per_incident:g}".replace(".", "p")
        return f"raw-{self.incidents}-f{fpi}-s{self.seed}-{self.key()}"


class GeneratorOutOfDate(RuntimeError):
    """The schema declares a required raw column bench/generate.py does not fill."""


class TableWriter:
    """Writes rows given as dicts in the column order the schema declares (Table.raw_columns)."""

    def __init__(self, table: Table, folder: Path):
        self.table = table
        self.names = [c.name for c in table.raw_columns]
        self.required = {c.name for c in table.raw_columns if c.required}
        self.file = open(folder / f"{table.name}.csv", "w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(self.names)
        self.rows = 0

    def write(self, row: dict) -> None:
        if self.rows == 0:
            self._check(row)
        self.writer.writerow([row.get(n, "") for n in self.names])
        self.rows += 1

    def _check(self, row: dict) -> None:
        # Optional columns the generator does not know are left empty (still valid); a required
        # one it cannot fill would only make the build reject the data, so it stops here.
        unknown = sorted(set(row) - set(self.names))
        missing = sorted(set(self.names) - set(row))
        required = sorted(set(missing) & self.required)
        if required:
            raise GeneratorOutOfDate(
                f"{self.table.name}: civcas.schema declares required raw columns {required} that "
                "bench/generate.py does not fill. Update the generator (and bump GENERATOR_VERSION).")
        for names, what in ((missing, "left empty, the generator does not fill"),
                            (unknown, "dropped, the schema no longer declares")):
            if names:
                print(f"bench.generate: {self.table.name}: {what} {', '.join(names)}", file=sys.stderr)

    def close(self) -> None:
        self.file.close()


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def values(table: Table, column: str) -> list:
    return list(table.column(column).values)


class Generator:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.rng = rng = random.Random(spec.seed)
        # A Zipf-distributed vocabulary: a few hundred real words, then invented ones, so the FTS
        # index has the long tail of distinct terms that real text has.
        invented = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(6000)})
        rng.shuffle(invented)
        self.vocab = DOMAIN_WORDS + invented
        self.cum = list(accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(len(self.vocab))))
        # Pools of sentences to draw text from. A small folder gets a small pool (the same for 128 incidents or
        # more): the property tests generate hundreds of small folders, and the full pools took 0.15-0.4 s each.
        self.sentences = [self._sentence(8, 15) for _ in range(min(8192, 64 * spec.incidents))]  # ~78 characters
        self.clauses = [self._sentence(4, 7) for _ in range(min(2048, 16 * spec.incidents))]     # ~35 characters
        self.search_word = "raqqa"  # an admin1 name, in ~1 in 15 summaries: what a place search looks like
        self.actor_ids: list[str] = []
        self.belligerents: list[str] = []
        self.claimants: list[str] = []
        self.place_names: list[str] = []
        self.place_country = bytearray()  # index into PLACE_COUNTRIES
        self.place_admin1 = bytearray()   # index into ADMIN1[country]
        self.figure_n = 0

    # --- text ----------------------------------------------------------------
    def _words(self, k: int) -> list[str]:
        return self.rng.choices(self.vocab, cum_weights=self.cum, k=k)

    def _sentence(self, lo: int, hi: int) -> str:
        return " ".join(self._words(self.rng.randint(lo, hi))).capitalize() + "."

    def text(self, sentences: int) -> str:
        return " ".join(self.rng.choices(self.sentences, k=sentences))

    def arabic(self, words: int) -> str:
        letters = [chr(c) for c in range(0x0627, 0x064B)]
        return " ".join("".join(self.rng.choices(letters, k=self.rng.randint(3, 7))) for _ in range(words))

    def date(self, start: dt.date = dt.date(2014, 8, 8), days: int = 3800) -> dt.date:
        return start + dt.timedelta(days=self.rng.randrange(days))

    # --- ids (functions of an index, so nothing needs to be kept) -----------------
    @staticmethod
    def source_id(j: int) -> str:
        return f"{slugify(PUBLISHERS[j % len(PUBLISHERS)])}-{j}"

    def random_source(self) -> str:
        return self.source_id(self.rng.randrange(self.spec.sources))

    def place_id(self, j: int) -> str:
        return f"{slugify(self.place_names[j])}-{j}"

    # --- tables --------------------------------------------------------------
    def countries(self, w: TableWriter) -> None:
        for code, name, local, lat0, lat1, lon0, lon1 in COUNTRY_ROWS:
            w.write({"country_code": code, "name": name, "name_local": local, "lat_min": lat0, "lat_max": lat1,
                     "lon_min": lon0, "lon_max": lon1})

    def actors(self, w: TableWriter) -> None:
        rng = self.rng
        types = values(ACTORS, "actor_type")
        armed = {"state armed force", "coalition", "non-state armed group"}
        codes = [c[0] for c in COUNTRY_ROWS]
        for k in range(self.spec.actors):
            actor_type = types[k % len(types)]
            name = " ".join(word.capitalize() for word in self._words(rng.randint(2, 4)))
            actor_id = f"{slugify(name)[:40].strip('-')}-{k}"
            parent = rng.choice(self.actor_ids) if self.actor_ids and rng.random() < 0.2 else ""
            w.write({"actor_id": actor_id, "name": name, "name_local": self.arabic(2) if rng.random() < 0.3 else "",
                     "actor_type": actor_type, "country": rng.choice(codes) if rng.random() < 0.8 else "",
                     "parent_id": parent, "description": self.text(2),
                     "url": f"https://www.{slugify(name)}.org/" if rng.random() < 0.5 else ""})
            self.actor_ids.append(actor_id)
            if actor_type in armed:
                self.belligerents.append(actor_id)
            if actor_type in ("monitor", "UN", "state armed force", "coalition", "news organisation", "person"):
                self.claimants.append(actor_id)

    def sources(self, w: TableWriter) -> None:
        rng = self.rng
        types = values(SOURCES, "source_type")
        for j in range(self.spec.sources):
            publisher = PUBLISHERS[j % len(PUBLISHERS)]
            published = self.date()
            cited = j > 0 and rng.random() < 0.1
            title = self.text(1)[:rng.randint(40, 90)].rstrip()
            url = f"https://www.{slugify(publisher)}.com/{published:%Y/%m/%d}/{slugify(title)[:50].strip('-')}"
            w.write({"source_id": self.source_id(j), "title": title, "publisher": publisher,
                     "author": rng.choice(AUTHORS) if rng.random() < 0.6 else "",
                     "url": url if rng.random() < 0.95 else "",
                     "published": published.isoformat() if rng.random() < 0.97 else "",
                     "source_type": rng.choice(types), "language": "ar" if rng.random() < 0.2 else "en",
                     "archive_url": f"https://web.archive.org/web/{published:%Y%m%d}000000/{url}" if rng.random() < 0.3 else "",
                     "accessed": "" if cited else (published + dt.timedelta(days=rng.randrange(30, 3000))).isoformat(),
                     "cited_in": self.source_id(rng.randrange(j)) if cited else "",
                     "notes": self.text(1) if rng.random() < 0.2 else ""})

    def places(self, w: TableWriter) -> None:
        rng = self.rng
        types = values(PLACES, "place_type")
        methods = values(PLACES, "geo_method")
        precisions = [p for p in values(PLACES, "geo_precision") if p <= 7]
        bbox = {c[0]: c[3:] for c in COUNTRY_ROWS}
        for j in range(self.spec.places):
            country = "SY" if rng.random() < 0.6 else "IQ"
            name = rng.choice(PLACE_PREFIXES) + "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
            admin = rng.randrange(len(ADMIN1[country]))
            self.place_names.append(name)
            self.place_country.append(PLACE_COUNTRIES.index(country))
            self.place_admin1.append(admin)
            lat0, lat1, lon0, lon1 = bbox[country]
            geo = rng.random() < 0.95
            w.write({"place_id": self.place_id(j), "name": name, "name_local": self.arabic(1 + (" " in name)),
                     "name_variants": " | ".join(name.replace("a", v) for v in ("e", "aa", "ah")) if rng.random() < 0.5 else "",
                     "place_type": rng.choice(types), "country": country,
                     "admin1": ADMIN1[country][admin], "admin2": "", "admin3": "",
                     "latitude": f"{rng.uniform(lat0, lat1):.4f}" if geo else "",
                     "longitude": f"{rng.uniform(lon0, lon1):.4f}" if geo else "",
                     "geo_precision": rng.choice(precisions) if geo else "",
                     "geo_method": rng.choice(methods) if geo else "",
                     "geo_source_id": self.random_source() if geo and rng.random() < 0.7 else "",
                     "notes": self.text(1) if rng.random() < 0.3 else ""})

    def incidents(self, wi: TableWriter, wf: TableWriter, ws: TableWriter, wd: TableWriter,
                  wc: TableWriter) -> None:
        """Incidents with their figures, statements, discrepancies and change-log rows, written side by side."""
        rng, spec = self.rng, self.spec
        n = spec.incidents
        # Figures per incident: at least one each, the rest spread at random (mean = figures_per_incident).
        counts = array("H", [1]) * n
        for _ in range(spec.figures - spec.aggregates - n):
            counts[rng.randrange(n)] += 1
        status = values(INCIDENTS, "belligerent_status")
        assessments = values(INCIDENTS, "belligerent_assessment")
        gradings = values(INCIDENTS, "grading")
        statement_types = values(STATEMENTS, "statement_type")
        kinds = values(DISCREPANCIES, "kind")
        precisions = list(DATE_PRECISION_MAX_SPAN)
        span = {1: (0, 0), 2: (1, 5), 3: (6, 7), 4: (8, 31), 5: (32, 366)}
        for i in range(n):
            p = rng.randrange(spec.places)
            country = PLACE_COUNTRIES[self.place_country[p]]
            admin1 = ADMIN1[country][self.place_admin1[p]]
            precision = rng.choices(precisions, weights=(60, 15, 10, 10, 5))[0]
            start = self.date()
            end = start + dt.timedelta(days=rng.randint(*span[precision]))
            place = self.place_names[p]
            incident_id = f"{country.lower()}-{start.isoformat()}-{self.place_id(p)}-{i}"
            wi.write({"incident_id": incident_id, "title": f"Air strike on {place} ({admin1}) {rng.choice(TITLE_PHRASES)}",
                      "date_start": start.isoformat(), "date_end": end.isoformat(), "date_precision": precision,
                      "date_notes": self.text(1) if precision > 1 and rng.random() < 0.5 else "",
                      "place_id": self.place_id(p),
                      "first_reported_by": rng.choice(self.claimants) if rng.random() < 0.3 else "",
                      "first_report_source_id": self.random_source() if rng.random() < 0.3 else "",
                      "belligerent": rng.choice(self.belligerents),
                      "belligerent_status": rng.choice(status), "belligerent_assessment": rng.choice(assessments),
                      "grading": rng.choice(gradings),
                      "grading_reason": self.text(1) if rng.random() < 0.3 else "",
                      "summary": f"{self.text(2)} The strike hit {place} in {admin1} governorate. {self.text(1)}",
                      "notes": self.text(1) if rng.random() < 0.2 else ""})
            published = end + dt.timedelta(days=rng.randint(1, 400))
            wc.write({"change_id": f"c{wc.rows}-{i}", "changed_on": published.isoformat(), "table_name": "incidents",
                      "row_id": incident_id, "action": "added", "replaced_by": "", "summary": self.text(1),
                      "source_id": ""})
            if rng.random() < 0.1:
                wc.write({"change_id": f"c{wc.rows}-{i}", "changed_on": (published + dt.timedelta(days=30)).isoformat(),
                          "table_name": "incidents", "row_id": incident_id, "action": "changed", "replaced_by": "",
                          "summary": self.text(1), "source_id": self.random_source()})
            first_figure = self.incident_figures(wf, incident_id, counts[i])
            if rng.random() < 0.5:
                ws.write({"statement_id": f"st{ws.rows}-{incident_id[:20].strip('-')}",
                          "incident_id": incident_id if rng.random() < 0.95 else "",
                          "source_id": self.random_source(), "speaker": rng.choice(self.actor_ids),
                          "statement_type": rng.choice(statement_types),
                          "said_on": end.isoformat() if rng.random() < 0.6 else "",
                          "quote": f"{self.text(1)} {rng.choice(self.clauses)} {rng.choice(self.clauses)}", "notes": self.text(1) if rng.random() < 0.2 else ""})
            if rng.random() < 0.01:
                wd.write({"discrepancy_id": f"d{wd.rows}-{incident_id[:20].strip('-')}", "kind": rng.choice(kinds),
                          "subject": self.text(1)[:60].rstrip(), "incident_id": incident_id,
                          "figure_id": first_figure if rng.random() < 0.5 else "",
                          "source_id": self.random_source(), "reported": self.text(1),
                          "better_source_id": self.random_source(), "better": self.text(1),
                          "notes": self.text(1) if rng.random() < 0.5 else ""})
        self.aggregate_figures(wf)

    def _figure(self, wf: TableWriter, metric: str, qualifier: str, lo, hi, **extra) -> str:
        rng = self.rng
        figure_id = f"f{self.figure_n}-{metric.replace('_', '-')}"
        self.figure_n += 1
        quote = f"{rng.choice(self.sentences)} {lo} {metric.replace('_', ' ')}. {rng.choice(self.clauses)}"
        row = {"figure_id": figure_id, "incident_id": "", "source_id": self.random_source(),
               "claimant": rng.choice(self.claimants), "metric": metric, "value_min": lo, "value_max": hi,
               "qualifier": qualifier, "scope_area": "", "aggregate_kind": "", "scope_perpetrator": "", "period_start": "",
               "period_end": "", "as_of": "", "quote": quote, "superseded_by": "",
               "notes": self.text(1) if rng.random() < 0.1 else ""}
        row.update(extra)
        wf.write(row)
        return figure_id

    def incident_figures(self, wf: TableWriter, incident_id: str, count: int) -> str:
        """Figures for one incident. Breakdowns (women, children) never exceed the lowest civilian toll,
        so breakdown <= total holds whatever the source and claimant. Returns the first figure's id."""
        rng = self.rng
        base = min(int(rng.paretovariate(1.2)) - 1, 400)  # most strikes kill few, some very many
        first = ""
        revised = None  # (metric, claimant) the next figure repeats: it supersedes the previous one
        for k in range(count):
            if revised:
                metric, claimant = revised
            else:
                metric = "civilians_killed" if k == 0 else rng.choices(INCIDENT_METRICS, weights=(4, 2, 1, 2))[0]
                claimant = rng.choice(self.claimants)
            qualifier = rng.choices(("exact", "at least", "range"), weights=(6, 3, 1))[0]
            lo = rng.randint(0, base // 2) if metric in ("women_killed", "children_killed") else base + rng.randint(0, 3)
            hi = lo if qualifier == "exact" else "" if qualifier in OPEN_ENDED else lo + rng.randint(1, 10)
            revised = (metric, claimant) if k + 1 < count and not revised and rng.random() < SUPERSEDED_SHARE else None
            superseded_by = f"f{self.figure_n + 1}-{metric.replace('_', '-')}" if revised else ""
            figure_id = self._figure(wf, metric, qualifier, lo, hi, incident_id=incident_id, claimant=claimant,
                                     superseded_by=superseded_by,
                                     as_of=self.date().isoformat() if rng.random() < 0.05 else "")
            first = first or figure_id
        return first

    def aggregate_figures(self, wf: TableWriter) -> None:
        """Aggregates in pairs from one claim: civilians killed and all deaths (never fewer)."""
        rng = self.rng
        remaining = self.spec.aggregates
        while remaining > 0:
            start = self.date()
            claim = {"scope_area": rng.choice(SCOPE_AREAS), "aggregate_kind": rng.choice(AGGREGATE_KIND_NAMES),
                     "scope_perpetrator": rng.choice(self.belligerents) if rng.random() < 0.7 else "",
                     "period_start": start.isoformat(),
                     "period_end": (start + dt.timedelta(days=rng.randrange(30, 1500))).isoformat(),
                     "as_of": self.date().isoformat(), "source_id": self.random_source(),
                     "claimant": rng.choice(self.claimants)}
            civilians = rng.randint(100, 30000)
            qualifier = rng.choice(("exact", "at least"))
            self._figure(wf, "civilians_killed", qualifier, civilians, civilians if qualifier == "exact" else "", **claim)
            remaining -= 1
            if remaining > 0:
                deaths = civilians + rng.randint(0, 50000)
                self._figure(wf, "deaths_total", "exact", deaths, deaths, **claim)
                remaining -= 1


def generate(spec: Spec, out: Path) -> dict:
    """Write the raw CSV files into `out` (created). Returns row counts and timing."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    gen = Generator(spec)
    writers = {t.name: TableWriter(t, out) for t in TABLES}
    try:
        gen.countries(writers[COUNTRIES.name])
        gen.actors(writers[ACTORS.name])
        gen.sources(writers[SOURCES.name])
        gen.places(writers[PLACES.name])
        gen.incidents(writers[INCIDENTS.name], writers[FIGURES.name], writers[STATEMENTS.name],
                      writers[DISCREPANCIES.name], writers[CHANGES.name])
    finally:
        for w in writers.values():
            w.close()
    info = {"spec": asdict(spec), "key": spec.key(), "generator_version": GENERATOR_VERSION,
            "rows": {name: w.rows for name, w in writers.items()},
            "bytes": sum((out / f"{t.name}.csv").stat().st_size for t in TABLES),
            "seconds": round(time.perf_counter() - started, 2),
            "search_word": gen.search_word}
    (out / "generated.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def ensure_raw(spec: Spec, workdir: Path, log=print) -> tuple[Path, dict, bool]:
    """Return (folder, info, cached): the generated folder for `spec`, generating it unless cached."""
    folder = workdir / spec.dirname()
    info_path = folder / "generated.json"
    if info_path.is_file():
        return folder, json.loads(info_path.read_text()), True
    tmp = workdir / (spec.dirname() + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    log(f"generating {spec.incidents:,} incidents ({spec.figures:,} figures) into {folder} ...")
    info = generate(spec, tmp)
    tmp.rename(folder)
    return folder, info, False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--figures-per-incident", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", required=True, help="folder to write the CSV files into")
    args = parser.parse_args(argv)
    info = generate(Spec(args.incidents, args.figures_per_incident, args.seed), Path(args.out))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
