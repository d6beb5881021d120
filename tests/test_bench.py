"""Smoke test of the benchmark harness (bench/): tiny generated data passes the build and the baseline."""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is run from the repository root, not installed
    sys.path.insert(0, str(ROOT))

from bench.baseline import run_baseline  # noqa: E402
from bench.generate import Spec, ensure_raw, generate  # noqa: E402
from bench.measure import run_measured  # noqa: E402
from civcas.schema import TABLES  # noqa: E402


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t.name: conn.execute(f"SELECT count(*) FROM [{t.name}]").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def test_generated_data_builds_and_imports(tmp_path):
    spec = Spec(200)
    raw = tmp_path / "raw"
    info = generate(spec, raw)
    assert info["rows"]["incidents"] == 200
    assert info["rows"]["figures"] == spec.figures == 600
    for table in TABLES:  # headers are exactly the schema's raw columns
        header = (raw / f"{table.name}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == [c.name for c in table.raw_columns]

    built = run_measured([sys.executable, str(ROOT / "build.py"), "--raw", str(raw), "--db", str(tmp_path / "civcas.db")],
                         cwd=ROOT, stderr_path=tmp_path / "build.err", timeout=120)
    assert built.ok, built.tail()
    assert built.peak_rss_mb > 0

    measured, phases = run_baseline(raw, tmp_path / "baseline.db", timeout=60)
    assert measured.ok, measured.tail()
    assert set(phases) == {"create", "import", "indexes", "fts"}
    assert _counts(tmp_path / "baseline.db") == _counts(tmp_path / "civcas.db") == info["rows"]
    conn = sqlite3.connect(tmp_path / "baseline.db")
    assert conn.execute("SELECT count(*) FROM incidents_fts WHERE incidents_fts MATCH 'strike'").fetchone()[0] > 0
    conn.close()


def test_generation_is_deterministic_and_cached(tmp_path):
    a = generate(Spec(50), tmp_path / "a")
    b = generate(Spec(50), tmp_path / "b")
    for table in TABLES:
        assert (tmp_path / "a" / f"{table.name}.csv").read_bytes() == (tmp_path / "b" / f"{table.name}.csv").read_bytes()
    assert a["rows"] == b["rows"]
    folder, _, cached = ensure_raw(Spec(50), tmp_path / "work", log=lambda m: None)
    again, _, cached_again = ensure_raw(Spec(50), tmp_path / "work", log=lambda m: None)
    assert (cached, cached_again, again) == (False, True, folder)


def test_loadtest_smoke(built_db, tmp_path):
    """`make loadtest` in miniature: 3 s at 4 connections against scripts/serve.sh serving the real build."""
    from bench.loadtest import run

    results = run(built_db, [4], 3, tmp_path, log=lambda m: None)
    assert results["warm_up_errors"] == []
    (level,) = results["levels"]
    assert level["errors"] == 0, level["error_list"]
    assert level["requests"] > 20 and level["requests_per_s"] > 5
    assert {"home /", "incident row", "incidents table"} <= set(level["groups"])
    for group in level["groups"].values():
        assert 0 < group["p50_ms"] <= group["p95_ms"] <= group["p99_ms"] <= group["max_ms"]
    assert (tmp_path / "loadtest-results.json").exists()
