"""Benchmark the civcas build and site against baselines measured in the same run.

    python -m bench.run [--incidents N] [--figures-per-incident F] [--workdir DIR] [--skip-site] [--quick]

1. Generate (or reuse from the cache in WORKDIR) a synthetic raw/ folder of N incidents.
2. Baseline: the same tables, indexes and FTS5 tables made by the sqlite3 CLI (.import --csv).
3. Build: `python build.py --raw ... --db WORKDIR/civcas.db`, wall time, CPU time and peak RSS.
   Targets: build time <= 1.5 x baseline, peak RSS <= 250 MB.
4. Site: scripts/serve.sh on the built database; p50/p95 of typical URLs and their ratio to the
   p95 of /-/versions.json on the same server. Target: p95 <= 100 ms.
5. A table on stdout and everything in WORKDIR/results.json.

--phases also runs the build in-process with a timer per step (bench.phases); --patch NAME
applies a proposed fix in that run only (civcas/ is never modified). If the real build does not
finish (see --build-timeout), the site is served from the phases run's database, and says so.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from civcas.schema import TABLES

from . import baseline as baseline_mod
from . import site as site_mod
from .generate import Spec, ensure_raw
from .measure import run_measured
from .phases import PATCHES

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
TARGET_RSS_MB = 200
TARGET_P95_MS = 100
QUICK_INCIDENTS = 50_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        sqlite_cli = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split()[0]
    except (OSError, IndexError):
        sqlite_cli = None
    try:
        import datasette.version
        datasette_version = datasette.version.__version__
    except ImportError:
        datasette_version = None
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "host": platform.node(),
            "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "memory_gb": mem_gb,
            "python": platform.python_version(), "sqlite_python": sqlite3.sqlite_version, "sqlite_cli": sqlite_cli,
            "datasette": datasette_version, "loadavg_start": os.getloadavg()}


def git_state() -> dict:
    """The commit and whether civcas/ or build.py has uncommitted changes, at the moment of asking."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "civcas", "build.py",
                                "metadata.yml", "scripts", "plugins"], capture_output=True, text=True).stdout.split("\n")
    except OSError:
        return {"commit": None, "uncommitted": []}
    return {"commit": commit, "uncommitted": [line[3:] for line in dirty if line.strip()]}


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t.name: conn.execute(f"SELECT count(*) FROM [{t.name}]").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def py_spy_dump(out: Path):
    """A callback for run_measured: where the build was when it was killed (if py-spy is installed)."""
    exe = shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy")

    def dump(pid: int) -> None:
        if not Path(exe).exists():
            return
        try:
            result = subprocess.run([str(exe), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
            out.write_text(result.stdout + result.stderr)
        except (OSError, subprocess.SubprocessError):
            pass
    return dump


def stuck_in(dump_path: Path) -> str | None:
    if not dump_path.is_file():
        return None
    frames = [line.strip() for line in dump_path.read_text().splitlines() if line.startswith("    ")]
    return frames[0] if frames else None


def fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def print_report(r: dict) -> None:
    out = []
    spec = r["spec"]
    out.append("")
    out.append(f"civcas benchmark — {spec['incidents']:,} incidents, {r['generated']['rows'].get('figures', 0):,} "
               f"figures ({r['generated']['bytes'] / 2**20:,.0f} MB of CSV), {r['machine']['date']}")
    out.append(f"machine: {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB, {r['machine']['cpu']}; "
               f"load average at start {', '.join(f'{x:.1f}' for x in r['machine']['loadavg_start'])}")
    out.append(f"build at {r['build']['git']['commit']}" + (f" + uncommitted {r['build']['git']['uncommitted']}"
                                                         if r['build']['git']['uncommitted'] else ""))
    out.append("")
    out.append(f"{'build':<46}{'wall s':>10}{'CPU s':>10}{'peak RSS MB':>13}{'ratio':>8}  target")
    b, c = r["baseline"], r["build"]
    out.append(f"{'baseline: sqlite3 .import + indexes + FTS5':<46}{fmt(b['seconds']):>10}{fmt(b['cpu_seconds']):>10}"
               f"{fmt(b['peak_rss_mb']):>13}{'1.0':>8}")
    status = "" if c["ok"] else ("  (killed at the timeout" + (f", in {c['stuck_in']}" if c.get("stuck_in") else "") + ")"
                                  if c["timed_out"] else f"  (exit {c['returncode']})")
    ratio = r["ratios"]["build_wall"]
    out.append(f"{'civcas: python build.py':<46}{fmt(c['seconds']):>10}{fmt(c['cpu_seconds']):>10}"
               f"{fmt(c['peak_rss_mb']):>13}{('>' if c['timed_out'] else '') + fmt(ratio):>8}  "
               f"<= {TARGET_RATIO} x: {r['targets']['build_ratio']}, <= {TARGET_RSS_MB} MB: "
               f"{r['targets']['peak_rss']}{status}")
    if r.get("phases"):
        p = r["phases"]
        label = "civcas in-process" + (" with proposed fixes*" if p["patches"] else " (bench.phases)")
        out.append(f"{label:<46}{fmt(p['measured']['seconds']):>10}{fmt(p['measured']['cpu_seconds']):>10}"
                   f"{fmt(p['measured']['peak_rss_mb']):>13}{fmt(r['ratios'].get('phases_wall')):>8}"
                   + ("" if p["measured"]["ok"] else "  (did not finish)"))
        if p["patches"]:
            out.append(f"  * bench.phases --patch {' --patch '.join(p['patches'])} (in the bench process only; "
                       "see docs/performance.md)")
        out.append("")
        out.append("  build phases (bench.phases)                      seconds   peak RSS MB")
        for ph in p.get("phases", []):
            if ph["seconds"] >= max(0.05, 0.002 * p["measured"]["seconds"]):
                out.append(f"    {ph['phase']:<44}{ph['seconds']:>10.2f}{ph['peak_rss_mb']:>12.1f}")
        out.append("  baseline phases (sqlite3)                        " +
                   ", ".join(f"{k} {v:.1f} s" for k, v in b.get("phases", {}).items()))
    if r.get("site"):
        s = r["site"]
        out.append("")
        out.append(f"site: datasette on {s['database']} (served from {s['db_source']}); startup incl. counting "
                   f"{fmt(s['startup_seconds'])} s; {s['requests']} requests per URL after 2 warm-ups")
        base = s["baseline"]
        out.append(f"{'URL':<58}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}{'x base':>8}  status  ok")
        out.append(f"{('baseline ' + base['path'])[:58]:<58}{base['n']:>4}{fmt(base['p50_ms']):>9}{fmt(base['p95_ms']):>9}"
                   f"{'1.0':>8}  {','.join(map(str, base['statuses']))}")
        for u in s["urls"]:
            ok = "yes" if u["p95_ms"] is not None and u["p95_ms"] <= TARGET_P95_MS and u["statuses"] == [200] else "NO"
            out.append(f"{u['label'][:58]:<58}{u['n']:>4}{fmt(u['p50_ms']):>9}{fmt(u['p95_ms']):>9}"
                       f"{fmt(u['ratio_p95_to_baseline']):>8}  {','.join(map(str, u['statuses'])):<6}  {ok}"
                       + (f"  ({'; '.join(u['notes'])})" if u["notes"] else ""))
        out.append(f"p95 <= {TARGET_P95_MS} ms: {r['targets']['site_p95']} "
                   f"({s['urls_meeting_target']} of {len(s['urls'])} URLs)")
    out.append("")
    print("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=None, help="incidents to generate (default 1,000,000)")
    parser.add_argument("--figures-per-incident", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "data"))
    parser.add_argument("--skip-site", action="store_true")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_INCIDENTS:,} incidents, 5 requests per URL")
    parser.add_argument("--requests", type=int, default=None, help="timed requests per URL (default 30; 5 with --quick)")
    parser.add_argument("--build-timeout", type=float, default=None,
                        help="kill the build after this many seconds (default: 10 x baseline, at least 300)")
    parser.add_argument("--phases", action="store_true", help="also run the build in-process with per-step timers")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES),
                        help="apply a proposed fix in the --phases run (implies --phases)")
    parser.add_argument("--sqlite3", default=shutil.which("sqlite3") or "/usr/bin/sqlite3")
    args = parser.parse_args(argv)
    incidents = args.incidents or (QUICK_INCIDENTS if args.quick else 1_000_000)
    requests = args.requests or (5 if args.quick else 30)
    phases = args.phases or bool(args.patch)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    spec = Spec(incidents, args.figures_per_incident, *([args.seed] if args.seed is not None else []))

    result: dict = {"spec": {"incidents": spec.incidents, "figures_per_incident": spec.figures_per_incident,
                             "seed": spec.seed}, "machine": machine()}
    log(f"workdir {workdir}")

    # 1. Data
    raw, info, cached = ensure_raw(spec, workdir, log)
    result["generated"] = info | {"folder": str(raw), "cached": cached}
    how = "cached" if cached else f"generated in {info['seconds']} s"
    log(f"raw data: {info['bytes'] / 2**20:,.0f} MB, {info['rows']} ({how})")

    # 2. Baseline
    log("baseline: sqlite3 .import + indexes + FTS5 ...")
    base_db = workdir / "baseline.db"
    measured, phases_b = baseline_mod.run_baseline(raw, base_db, args.sqlite3)
    if not measured.ok:
        log(f"baseline failed:\n{measured.tail()}")
        return 2
    result["baseline"] = measured.as_dict() | {"phases": phases_b, "counts": counts(base_db),
                                               "loadavg_end": os.getloadavg()}
    log(f"baseline: {measured.seconds:.1f} s wall, {measured.cpu_seconds:.1f} s CPU, {measured.peak_rss_mb} MB")
    base_db.unlink()

    # 3. Build
    timeout = args.build_timeout or max(300.0, 10 * measured.seconds)
    db = workdir / "civcas.db"
    if db.exists():
        db.unlink()
    result["build"] = {"git": git_state()}
    log(f"civcas: python build.py (timeout {timeout:.0f} s) at {result['build']['git']} ...")
    dump = workdir / "build-timeout-stack.txt"
    if dump.exists():
        dump.unlink()
    build = run_measured([sys.executable, str(ROOT / "build.py"), "--raw", str(raw), "--db", str(db)], cwd=ROOT,
                         stdout_path=workdir / "build.out", stderr_path=workdir / "build.err", timeout=timeout,
                         on_timeout=py_spy_dump(dump))
    if build.timed_out:  # killed: build.py had no chance to remove its temporary file
        for leftover in workdir.glob(f".{db.stem}-*.building"):
            leftover.unlink()
    result["build"] |= build.as_dict() | {"timeout": timeout, "stuck_in": stuck_in(dump),
                                         "stderr_tail": build.tail(5), "loadavg_end": os.getloadavg()}
    if build.ok:
        built = counts(db)
        result["build"]["counts"] = built
        if built != result["baseline"]["counts"]:
            log(f"warning: row counts differ: build {built} vs baseline {result['baseline']['counts']}")
    log(f"civcas: {'ok' if build.ok else 'TIMED OUT' if build.timed_out else 'FAILED'} {build.seconds:.1f} s wall, "
        f"{build.cpu_seconds:.1f} s CPU, {build.peak_rss_mb} MB" + (f"; stuck in {stuck_in(dump)}" if build.timed_out else ""))
    if not build.ok and not build.timed_out:
        log(build.tail())
    result["ratios"] = {"build_wall": round(build.seconds / measured.seconds, 2),
                        "build_cpu": round(build.cpu_seconds / max(measured.cpu_seconds, 1e-9), 2)}
    result["targets"] = {"build_ratio": "met" if build.ok and result["ratios"]["build_wall"] <= TARGET_RATIO else "NOT met",
                         "peak_rss": ("met" if build.peak_rss_mb <= TARGET_RSS_MB else "NOT met") if build.ok else
                         "NOT met" if build.peak_rss_mb > TARGET_RSS_MB else "unknown (the build did not finish)"}

    # 3b. Phases: on request, or, when the build did not finish, with every proposed fix so that
    # the phase breakdown shows what else costs time and the site can still be measured.
    site_db, db_source = (db, "build.py") if build.ok else (None, None)
    patches = list(args.patch)
    if build.timed_out and not patches:
        phases, patches = True, sorted(PATCHES)
        log(f"the build did not finish: running it in-process with the proposed fixes {patches} instead")
    if phases:
        phases_db = workdir / "civcas-phases.db"
        phases_json = workdir / "phases.json"
        cmd = [sys.executable, "-m", "bench.phases", "--raw", str(raw), "--db", str(phases_db), "--json", str(phases_json)]
        for name in patches:
            cmd += ["--patch", name]
        log(f"civcas in-process with per-step timers{' (patched: ' + ', '.join(patches) + ')' if patches else ''} ...")
        pm = run_measured(cmd, cwd=ROOT, stderr_path=workdir / "phases.err", timeout=timeout)
        if pm.timed_out:
            for leftover in workdir.glob(f".{phases_db.stem}-*.building"):
                leftover.unlink()
        detail = json.loads(phases_json.read_text()) if pm.ok and phases_json.is_file() else {}
        result["phases"] = {"measured": pm.as_dict(), "patches": patches, "phases": detail.get("phases", []),
                            "stderr_tail": pm.tail(40)}
        result["ratios"]["phases_wall"] = round(pm.seconds / measured.seconds, 2)
        log(f"phases: {'ok' if pm.ok else 'did not finish'} {pm.seconds:.1f} s wall, {pm.peak_rss_mb} MB")
        if pm.ok and site_db is None:
            site_db, db_source = phases_db, "bench.phases" + (f" with proposed fixes {', '.join(patches)}" if patches else "")

    # 4. Site
    if not args.skip_site:
        if site_db is None:
            log("site: skipped, no database was built")
        else:
            served = workdir / "civcas.db"
            if site_db != served:
                site_db.replace(served)
            git = git_state()
            with site_mod.Server(served, workdir / "serve.log") as server:
                log(f"site: datasette up on {server.base} after {server.startup_seconds} s (incl. counting and hashing the file)")
                s = site_mod.samples(served, info.get("search_word", "civilians"))
                urls = site_mod.typical_urls(served.stem, s)
                base, rows = site_mod.bench_urls(server.base, urls, requests=requests, log=log)
            meeting = [u for u in rows if u["p95_ms"] is not None and u["p95_ms"] <= TARGET_P95_MS and u["statuses"] == [200]]
            result["site"] = {"git": git, "database": served.stem, "db_source": db_source, "startup_seconds": server.startup_seconds,
                              "requests": requests, "samples": s, "baseline": base, "urls": rows,
                              "urls_meeting_target": len(meeting)}
            result["targets"]["site_p95"] = "met" if len(meeting) == len(rows) else "NOT met"

    leftover = workdir / "civcas-phases.db"
    if leftover.exists():
        leftover.unlink()
    result["machine"]["loadavg_end"] = os.getloadavg()
    (workdir / "results.json").write_text(json.dumps(result, indent=2, default=list) + "\n")
    print_report(result)
    log(f"results written to {workdir / 'results.json'}")
    # Missing a target is a result, not an error; a build that rejects the generated data is an error.
    return 1 if not build.ok and not build.timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
