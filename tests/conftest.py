"""Shared fixtures: a real civcas.db built from raw/, and Datasette configured as in production."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "raw"
SERVE = ROOT / "scripts" / "serve.sh"
PLUGINS = ROOT / "plugins"


def run_build(*args: str) -> subprocess.CompletedProcess:
    """Run the build contract exactly as a curator would: python build.py ARGS."""
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def production_settings() -> dict[str, object]:
    """The --setting flags of scripts/serve.sh, the one place production settings live."""
    settings = {}
    for name, value in re.findall(r"--setting (\w+) (\S+)", SERVE.read_text()):
        settings[name] = {"on": True, "off": False}.get(value, int(value) if value.isdigit() else value)
    return settings


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    """civcas.db built from the real raw/ folder by build.py."""
    out = tmp_path_factory.mktemp("built") / "civcas.db"
    result = run_build("--raw", str(RAW), "--db", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def db(built_db):
    """A read-only connection to the built database, rows addressable by column name."""
    import sqlite3

    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    yield conn
    conn.close()


@pytest.fixture
def raw_copy(tmp_path) -> Path:
    """A writable copy of raw/ to break on purpose."""
    target = tmp_path / "raw"
    shutil.copytree(RAW, target)
    return target


@pytest_asyncio.fixture
async def ds(built_db):
    from datasette.app import Datasette
    from datasette.utils import parse_metadata

    datasette = Datasette(
        immutables=[str(built_db)],
        metadata=parse_metadata((ROOT / "metadata.yml").read_text(encoding="utf-8")),
        settings=production_settings(),
        static_mounts=[("docs", str(ROOT / "docs"))],
        plugins_dir=str(PLUGINS),
    )
    await datasette.invoke_startup()
    return datasette
