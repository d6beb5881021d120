"""Time typical page requests against a real datasette server, started the way production starts it.

`Server` runs scripts/serve.sh DB with HOST and PORT in the environment (it runs
`datasette serve -i ... --setting ...`, which counts and hashes the file at start-up), in its own
session, and stops it by its process-group id. `bench_urls` requests every URL
two times to warm up, then N times in round-robin order (one request at a time,
so noise from a shared machine is spread over all URLs alike) and reports p50
and p95 in milliseconds, with the p95 of GET /-/versions.json, a request that
touches no data, as the baseline measured on the same server in the same run.
"""
from __future__ import annotations

import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVE = ROOT / "scripts" / "serve.sh"
METADATA = ROOT / "metadata.yml"
BASELINE_PATH = "/-/versions.json"
# The first request the map above /civcas/incidents makes (plugins/civcas_map.py: ids and coordinates only, no
# facets, no count; then it follows next_url, 2,000 rows a page, up to max_points; a popup is read when opened).
# Until 2026-12 the map was datasette-cluster-map 0.18.2's, which asked for
# "_size=max&_labels=on&_extra=count&_extra=next_url&_shape=objects" (every column, labels, facets, a count).
MAP_QUERY = "_col=latitude&_col=longitude&_size=max&_nofacet=1&_nocount=1&_shape=arrays"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, timeout: float = 120) -> tuple[int, float, int, str]:
    """GET url; returns (status, seconds, bytes, body start) with the body read to its end."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    seconds = time.perf_counter() - started
    return status, seconds, len(body), body[:200_000].decode("utf-8", "replace")


class Server:
    def __init__(self, db: Path, log: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.db, self.log_path, self.host = db.resolve(), log, host
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "Server":
        env = os.environ | {"HOST": self.host, "PORT": str(self.port)}
        self.log = open(self.log_path, "wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen([str(SERVE), str(self.db)], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = started + 900
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scripts/serve.sh exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if fetch(self.base + BASELINE_PATH, timeout=5)[0] == 200:
                    self.startup_seconds = round(time.perf_counter() - started, 2)
                    return self
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"datasette did not answer within 900 s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


# --- What to request ---------------------------------------------------------

def samples(db: Path, search_word: str) -> dict[str, str]:
    """Real values from the built database to put in URLs and canned-query parameters."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        one = lambda sql, *args: (conn.execute(sql, args).fetchone() or [None])[0]  # noqa: E731
        incident = one("SELECT incident_id FROM incidents WHERE rowid >= (SELECT max(rowid) / 2 FROM incidents) "
                       "AND incident_id IN (SELECT incident_id FROM figures) ORDER BY rowid LIMIT 1") \
            or one("SELECT incident_id FROM incidents LIMIT 1") or ""
        row = conn.execute("SELECT place, belligerent, date_start, latitude, longitude FROM incidents "
                           "WHERE incident_id = ?", (incident,)).fetchone() or ("", "", "2016-01-01", None, None)
        place, belligerent, date_start, lat, lon = row
        words = sorted(re.findall(r"[A-Za-z]{4,}", place or ""), key=len)
        source = one("SELECT source_id FROM figures WHERE incident_id = ? LIMIT 1", incident) or \
            one("SELECT source_id FROM sources LIMIT 1") or ""
        perpetrator = one("SELECT scope_perpetrator FROM figures WHERE scope_perpetrator IS NOT NULL LIMIT 1") or ""
        kind = one("SELECT kind FROM discrepancies LIMIT 1") or "misspelling"
    finally:
        conn.close()
    y, m, d = (int(x) for x in date_start.split("-"))
    return {"incident": incident, "place_word": (words[-1] if words else search_word).lower(),
            "search_word": search_word, "belligerent": belligerent or "", "source": source,
            "perpetrator": perpetrator, "kind": kind, "from": f"{y}-{m:02d}-01",
            "to": f"{y}-{m:02d}-{min(d + 27, 28):02d}", "latitude": str(lat or 35.95),
            "longitude": str(lon or 39.0167), "km": "10", "type": "news report", "q": search_word}


def canned_queries(database: str) -> dict[str, list[str]]:
    """Canned query name -> its :named parameters, from metadata.yml."""
    meta = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    queries = meta.get("databases", {}).get(database, {}).get("queries", {}) or {}
    out = {}
    for name, query in queries.items():
        sql = query["sql"] if isinstance(query, dict) else query
        sql = re.sub(r"'[^']*'", "''", re.sub(r"--[^\n]*", "", sql))  # no parameters in strings or comments
        out[name] = list(dict.fromkeys(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", sql)))
    return out


def typical_urls(database: str, s: dict[str, str]) -> list[tuple[str, str]]:
    """(label, path) of the pages people and the map actually request."""
    enc = urllib.parse.quote
    urls = [
        ("home", "/"),
        ("database", f"/{database}"),
        ("incidents table", f"/{database}/incidents"),
        ("incidents by date", f"/{database}/incidents?_sort_desc=date_start"),
        ("incidents in SY", f"/{database}/incidents?country=SY"),
        ("incidents JSON 100", f"/{database}/incidents.json?_shape=array&_size=100"),
        ("figures of 1 incident", f"/{database}/figures?incident_id={enc(s['incident'])}"),
        ("incident row", f"/{database}/incidents/{enc(s['incident'])}"),
        (f"search '{s['search_word']}'", f"/{database}/incidents?_search={enc(s['search_word'])}"),
        (f"search '{s['place_word']}'", f"/{database}/incidents?_search={enc(s['place_word'])}"),
        ("sources table", f"/{database}/sources"),
    ]
    for name, params in canned_queries(database).items():
        urls.append((f"query {name}", f"/{database}/{name}"))
        sample = {p: s[p] for p in params if p in s}
        if sample:
            urls.append((f"query {name} ?{'&'.join(sample)}",
                         f"/{database}/{name}?{urllib.parse.urlencode(sample)}"))
    urls.append(("map data (first 2,000 points)", f"/{database}/incidents.json?{MAP_QUERY}"))
    return urls


# --- Timing -------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class UrlResult:
    label: str
    path: str
    times: list[float] = field(default_factory=list)
    statuses: set = field(default_factory=set)
    bytes: int = 0
    notes: set = field(default_factory=set)

    def add(self, status: int, seconds: float, size: int, body: str, measured: bool = True) -> None:
        if measured:
            self.times.append(seconds)
        self.statuses.add(status)
        self.bytes = size
        if "SQL query took too long" in body:
            self.notes.add("hit sql_time_limit_ms")
        if "These facets timed out" in body:
            timed_out = re.search(r"These facets timed out: ([^<]*)", body)
            self.notes.add("facets timed out: " + (timed_out.group(1).strip() if timed_out else "?"))

    def summary(self, baseline_p95_ms: float | None) -> dict:
        ms = [t * 1000 for t in self.times]
        p95 = percentile(ms, 95) if ms else None
        return {"label": self.label, "path": self.path, "n": len(ms),
                "p50_ms": round(percentile(ms, 50), 1) if ms else None, "p95_ms": round(p95, 1) if ms else None,
                "max_ms": round(max(ms), 1) if ms else None,
                "ratio_p95_to_baseline": round(p95 / baseline_p95_ms, 1) if ms and baseline_p95_ms else None,
                "statuses": sorted(self.statuses), "bytes": self.bytes, "notes": sorted(self.notes)}


def bench_urls(base: str, urls: list[tuple[str, str]], requests: int = 30, warmups: int = 2,
               slow_seconds: float = 1.0, slow_requests: int = 5, log=print) -> tuple[dict, list[dict]]:
    """Warm up every URL, then time `requests` rounds over all of them, one request at a time.

    A URL whose warm-ups take more than `slow_seconds` (median) is timed only `slow_requests`
    times, so a page that hits the 2 s SQL time limit does not stretch the run by minutes.
    """
    results = [UrlResult("baseline " + BASELINE_PATH, BASELINE_PATH)] + [UrlResult(l, p) for l, p in urls]
    slow = set()
    for r in results:
        warm = []
        for _ in range(warmups):
            status, seconds, size, body = fetch(base + r.path)
            r.add(status, seconds, size, body, measured=False)
            warm.append(seconds)
        if sorted(warm)[len(warm) // 2] > slow_seconds:
            slow.add(r.path)
    log(f"site: {len(results)} URLs warmed up; {len(slow)} slow (> {slow_seconds:g} s, timed {slow_requests}x); "
        f"timing {requests} rounds ...")
    for i in range(requests):
        for r in results:
            if r.path in slow and i >= slow_requests:
                continue
            status, seconds, size, body = fetch(base + r.path)
            r.add(status, seconds, size, body)
    baseline = results[0].summary(None)
    return baseline, [r.summary(baseline["p95_ms"]) for r in results[1:]]


def main(argv: list[str] | None = None) -> int:
    """Time the site alone on a database already built (e.g. the one `bench.run` left in bench/data)."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.site", description=main.__doc__)
    parser.add_argument("--db", default=str(ROOT / "bench" / "data" / "civcas.db"))
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--search-word", default="raqqa")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    db = Path(args.db).resolve()
    with Server(db, db.parent / "serve.log") as server:
        print(f"datasette up on {server.base} after {server.startup_seconds} s (incl. counting and hashing the file)",
              file=sys.stderr)
        s = samples(db, args.search_word)
        base, rows = bench_urls(server.base, typical_urls(db.stem, s), requests=args.requests,
                                log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{'URL':<58} {'n':>3} {'p50 ms':>8} {'p95 ms':>8}  status  <= 100 ms")
    print(f"{'baseline /-/versions.json':<58} {base['n']:>3} {base['p50_ms']:>8.1f} {base['p95_ms']:>8.1f}")
    for r in rows:
        ok = "yes" if r["p95_ms"] is not None and r["p95_ms"] <= 100 and r["statuses"] == [200] else "NO"
        print(f"{r['label']:<58} {r['n']:>3} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}  {r['statuses']}  {ok} {' '.join(r['notes'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"baseline": base, "urls": rows}, indent=2, default=list) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
