"""Bounded load on loopback against the production server: `make loadtest`.

Starts scripts/serve.sh DB (bench.site.Server: `datasette serve` with every
production setting and plugin, stopped by its process group), then for each level of concurrency runs that
many keep-alive connections for --seconds each. Each connection loops: pick a URL from a weighted mix of what
people and the map request, GET it, read the body to its end, record status, time and bytes. The mix:

  home, database page, the incidents table (plain, an extra facet, ?country=SY), full-text search, incident
  row pages (random ids from the database), figures of one incident, every canned query of metadata.yml
  (without parameters, and with sample values where it has them), JSON (?_shape=array), a CSV stream
  (?_stream=on&_size=max), the map's data request (bench.site.MAP_QUERY) and the SQLite download.

At most --download-concurrency downloads are in flight at once (a connection that draws one while the cap is
reached draws again). A database larger than --download-max-mb (default 256) is fetched as its first that many
MB (`Range: bytes=0-...`, answered 206 by plugins/civcas_download.py), so at 1M incidents (4.3 GB) the download
stays one part of the mix instead of the whole of it; smaller files are downloaded whole.

Output per level: requests/s, MB/s, errors (any status outside 2xx/3xx, or an exception, listed by URL),
p50/p95/p99/max per URL group, and the CPU time used by the client and by the server in that level (the
client must not be the bottleneck: a client using most of a core means the figures measure the client).
Everything is written to <workdir>/loadtest-results.json.

    .venv/bin/python -m bench.loadtest --db civcas.db --seconds 60 --levels 8,32,64
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.site import MAP_QUERY, ROOT, Server, canned_queries, percentile, samples  # noqa: E402

DATABASE = "civcas"
SEARCH_WORDS = ["strike", "raqqa", "mosul", "coalition", "civilians", "village", "killed", "children"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- The mix --------------------------------------------------------------------------------------------

@dataclass
class Entry:
    group: str
    weight: float
    paths: list[str]          # one drawn at random per request

    def draw(self, rng: random.Random) -> str:
        return self.paths[0] if len(self.paths) == 1 else rng.choice(self.paths)


def sample_ids(db: Path, n: int = 200, seed: int = 1) -> tuple[list[str], list[str]]:
    """Up to n incident ids spread over the table, and up to n of those that have figures."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        total = conn.execute("SELECT max(rowid) FROM incidents").fetchone()[0] or 0
        rng = random.Random(seed)
        rowids = sorted({rng.randint(1, total) for _ in range(n * 2)}) if total else []
        ids: list[str] = []
        for start in range(0, len(rowids), 500):
            chunk = rowids[start:start + 500]
            ids += [r[0] for r in conn.execute(
                f"SELECT incident_id FROM incidents WHERE rowid IN ({','.join('?' * len(chunk))})", chunk)]
        ids = ids[:n]
        with_figures = [i for i in ids if conn.execute(
            "SELECT 1 FROM figures WHERE incident_id = ? LIMIT 1", (i,)).fetchone()]
    finally:
        conn.close()
    return ids or [""], with_figures or ids or [""]


def build_mix(db: Path, database: str = DATABASE) -> list[Entry]:
    """The weighted mix of URL groups. Weights are requests per 100, roughly what a public site sees:
    mostly incident pages, tables and searches, some exports and queries, rare whole downloads."""
    s = samples(db, SEARCH_WORDS[0])
    ids, with_figures = sample_ids(db)
    enc = urllib.parse.quote
    d = f"/{database}"
    mix = [
        Entry("home /", 8, ["/"]),
        Entry("database page", 5, [d]),
        Entry("incidents table", 8, [f"{d}/incidents"]),
        Entry("incidents facet admin1", 3, [f"{d}/incidents?_facet=admin1"]),
        Entry("incidents ?country=SY", 4, [f"{d}/incidents?country=SY"]),
        Entry("incidents search", 7, [f"{d}/incidents?_search={enc(w)}" for w in SEARCH_WORDS + [s["place_word"]]]),
        Entry("incident row", 20, [f"{d}/incidents/{enc(i)}" for i in ids]),
        Entry("figures of 1 incident", 6, [f"{d}/figures?incident_id={enc(i)}" for i in with_figures]),
        Entry("incidents JSON array", 5, [f"{d}/incidents.json?_shape=array&_size=100"]),
        Entry("incidents CSV stream", 1.5, [f"{d}/incidents.csv?_stream=on&_size=max"]),
        Entry("map data", 4, [f"{d}/incidents.json?{MAP_QUERY}"]),
        Entry("download .db", 0.5, [f"/{database}.db"]),
    ]
    plain, with_params = [], []
    for name, params in canned_queries(database).items():
        plain.append(f"{d}/{name}")
        values = {p: s[p] for p in params if p in s}
        if values:
            with_params.append(f"{d}/{name}?{urllib.parse.urlencode(values)}")
            if "incident" in values:  # vary the incident
                with_params += [f"{d}/{name}?{urllib.parse.urlencode(values | {'incident': i})}" for i in with_figures[:20]]
    if plain:
        mix.append(Entry("canned query", 9, plain))
    if with_params:
        mix.append(Entry("canned query ?params", 9, with_params))
    return mix


# --- Recording ------------------------------------------------------------------------------------------

@dataclass
class Group:
    times: list[float] = field(default_factory=list)
    bytes: int = 0
    errors: int = 0
    statuses: dict = field(default_factory=dict)


@dataclass
class Level:
    connections: int
    groups: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)   # (url, what) -> count

    def record(self, group: str, url: str, status: int | None, seconds: float, size: int, error: str | None):
        g = self.groups.setdefault(group, Group())
        g.times.append(seconds)
        g.bytes += size
        key = str(status) if status is not None else "exception"
        g.statuses[key] = g.statuses.get(key, 0) + 1
        if error is not None:
            g.errors += 1
            self.errors[(url, error)] = self.errors.get((url, error), 0) + 1


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (from /proc; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_pid(server: Server) -> int:
    """The datasette process: serve.sh ends with exec, so it is the pid Server started."""
    return server.proc.pid


# --- Load -----------------------------------------------------------------------------------------------

async def run_level(base: str, mix: list[Entry], connections: int, seconds: float, pid: int,
                    download_concurrency: int = 1, seed: int = 0, timeout: float = 120.0,
                    download_headers: dict | None = None) -> dict:
    level = Level(connections)
    weights = [e.weight for e in mix]
    downloads = {"in_flight": 0}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        while time.perf_counter() < deadline:
            entry = rng.choices(mix, weights)[0]
            is_download = entry.group.startswith("download")
            if is_download:
                if downloads["in_flight"] >= download_concurrency:
                    continue
                downloads["in_flight"] += 1
            url = entry.draw(rng)
            started = time.perf_counter()
            status, size, error = None, 0, None
            try:
                headers = download_headers if is_download else None
                async with client.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    async for chunk in response.aiter_raw(1 << 20):
                        size += len(chunk)
                if not 200 <= status < 400:
                    error = f"HTTP {status}"
            except Exception as e:  # any failure counts as an error, listed by URL
                error = f"{type(e).__name__}: {e}"[:200]
            finally:
                if is_download:
                    downloads["in_flight"] -= 1
            level.record(entry.group, url, status, time.perf_counter() - started, size, error)

    client_cpu, server_cpu = self_cpu_seconds(), proc_cpu_seconds(pid)
    wall = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout, http2=False) as client:
        await asyncio.gather(*(worker(client, n) for n in range(connections)))
    wall = time.perf_counter() - wall
    client_cpu, server_cpu = self_cpu_seconds() - client_cpu, proc_cpu_seconds(pid) - server_cpu
    return summarize(level, wall, client_cpu, server_cpu, proc_threads(pid))


def summarize(level: Level, wall: float, client_cpu: float, server_cpu: float, threads: int) -> dict:
    total = sum(len(g.times) for g in level.groups.values())
    total_bytes = sum(g.bytes for g in level.groups.values())
    groups = {}
    for name, g in sorted(level.groups.items(), key=lambda kv: -len(kv[1].times)):
        ms = [t * 1000 for t in g.times]
        groups[name] = {"n": len(ms), "per_s": round(len(ms) / wall, 2),
                        "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                        "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
                        "mb": round(g.bytes / 1e6, 2), "errors": g.errors, "statuses": g.statuses}
    all_ms = [t * 1000 for g in level.groups.values() for t in g.times]
    return {
        "connections": level.connections, "seconds": round(wall, 2), "requests": total,
        "requests_per_s": round(total / wall, 1), "mb_per_s": round(total_bytes / 1e6 / wall, 1),
        "errors": sum(level.errors.values()),
        "error_list": [{"url": u, "error": e, "count": c} for (u, e), c in sorted(level.errors.items())],
        "p50_ms": round(percentile(all_ms, 50), 1) if all_ms else None,
        "p95_ms": round(percentile(all_ms, 95), 1) if all_ms else None,
        "p99_ms": round(percentile(all_ms, 99), 1) if all_ms else None,
        "client_cpu_pct": round(100 * client_cpu / wall, 1), "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "server_threads": threads, "groups": groups,
    }


async def warm_up(base: str, mix: list[Entry], download_headers: dict | None = None) -> list[dict]:
    """Every distinct path once (caches, first-request set-up), not timed; returns any errors."""
    errors = []
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        for entry in mix:
            for path in dict.fromkeys(entry.paths[:3] if len(entry.paths) > 25 else entry.paths):
                try:
                    headers = download_headers if entry.group.startswith("download") else None
                    async with client.stream("GET", path, headers=headers) as r:
                        async for _ in r.aiter_raw(1 << 20):
                            pass
                    if not 200 <= r.status_code < 400:
                        errors.append({"url": path, "error": f"HTTP {r.status_code}"})
                except Exception as e:
                    errors.append({"url": path, "error": f"{type(e).__name__}: {e}"[:200]})
    return errors


# --- Report ---------------------------------------------------------------------------------------------

def format_level(r: dict) -> str:
    lines = [f"== {r['connections']} connections, {r['seconds']:.0f} s: {r['requests']} requests, "
             f"{r['requests_per_s']} req/s, {r['mb_per_s']} MB/s, errors {r['errors']}; "
             f"all p50/p95/p99 {r['p50_ms']}/{r['p95_ms']}/{r['p99_ms']} ms; "
             f"CPU: server {r['server_cpu_pct']} %, client {r['client_cpu_pct']} % of one core",
             f"{'group':<26}{'n':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'MB':>9}{'err':>5}"]
    for name, g in r["groups"].items():
        lines.append(f"{name:<26}{g['n']:>7}{g['per_s']:>8}{g['p50_ms']:>9}{g['p95_ms']:>9}{g['p99_ms']:>9}"
                     f"{g['max_ms']:>9}{g['mb']:>9}{g['errors']:>5}")
    for e in r["error_list"]:
        lines.append(f"  ERROR x{e['count']}: {e['url']}: {e['error']}")
    return "\n".join(lines)


def run(db: Path, levels: list[int], seconds: float, workdir: Path, download_concurrency: int = 1,
        out: Path | None = None, log=print, download_max_mb: float = 256) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    mix = [e for e in build_mix(db) if download_concurrency > 0 or not e.group.startswith("download")]
    download_headers = None
    if db.stat().st_size > download_max_mb * 1e6:
        download_headers = {"range": f"bytes=0-{int(download_max_mb * 1e6) - 1}"}
        for e in mix:
            if e.group.startswith("download"):
                e.group = f"download .db (first {download_max_mb:g} MB)"
    results = {"db": str(db), "db_mb": round(db.stat().st_size / 1e6, 1), "seconds_per_level": seconds,
               "levels": [], "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                         "load_average_before": os.getloadavg()},
               "mix": [{"group": e.group, "weight": e.weight, "paths": len(e.paths), "example": e.paths[0]}
                       for e in mix], "download_concurrency": download_concurrency,
               "download_headers": download_headers}
    with Server(db, workdir / "loadtest-serve.log") as server:
        pid = server_pid(server)
        results["server_startup_s"] = server.startup_seconds
        log(f"server {server.base} (pid {pid}) up in {server.startup_seconds} s; warming up ...")
        results["warm_up_errors"] = asyncio.run(warm_up(server.base, mix, download_headers))
        for connections in levels:
            r = asyncio.run(run_level(server.base, mix, connections, seconds, pid, download_concurrency,
                                      seed=connections, download_headers=download_headers))
            results["levels"].append(r)
            log(format_level(r))
        results["machine"]["load_average_after"] = os.getloadavg()
    out = out or workdir / "loadtest-results.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    log(f"results: {out}")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, default=ROOT / "civcas.db")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--levels", default="8,32,64", help="concurrent connections per level, comma-separated")
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "data")
    p.add_argument("--download-concurrency", type=int, default=1,
                   help="most whole-database downloads in flight at once (0: none in the mix)")
    p.add_argument("--download-max-mb", type=float, default=256,
                   help="a database larger than this is fetched as its first that many MB (a Range request)")
    p.add_argument("--out", type=Path, help="results file (default <workdir>/loadtest-results.json)")
    a = p.parse_args(argv)
    if not a.db.exists():
        p.error(f"{a.db} does not exist (make build)")
    if a.db.stem != DATABASE:  # datasette names the database after the file, and every URL says /civcas
        p.error(f"the database file must be named {DATABASE}.db (put a copy or a hard link in a folder of its own)")
    levels = [int(x) for x in a.levels.split(",") if x.strip()]
    results = run(a.db, levels, a.seconds, a.workdir, a.download_concurrency, a.out,
                  download_max_mb=a.download_max_mb)
    errors = sum(r["errors"] for r in results["levels"]) + len(results["warm_up_errors"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
