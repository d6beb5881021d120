"""`make deploy-files` (scripts/deploy_files.py): a Docker build context that cannot drift from the project.

Docker is not needed: the Dockerfile is read, the files beside it are compared with the checkout, and the
folder is served the way the container serves it (scripts/serve.sh from the folder, with .venv in place of the
image's `python -m venv .venv && pip install ...`).
"""
from __future__ import annotations

import filecmp
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SERVE, free_port, production_settings

SCRIPT = ROOT / "scripts" / "deploy_files.py"


def generate(db: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--db", str(db), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def deploy(built_db, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "deploy"
    result = generate(built_db, out)
    assert result.returncode == 0, result.stderr
    return out


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [tuple(line.split(None, 1)) for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def pyproject_dependencies() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["dependencies"]


def serve_paths(text: str) -> list[str]:
    """The files and folders scripts/serve.sh's datasette command reads, read here independently."""
    found = re.findall(r"--(?:metadata|plugins-dir|template-dir|config) ([^\s$\\]+)", text)
    found += re.findall(r"--static \w+:([^\s$\\]+)", text)
    return found


def test_the_dockerfile_installs_exactly_the_pins_of_pyproject(deploy):
    steps = instructions((deploy / "Dockerfile").read_text(encoding="utf-8"))
    installs = [args for kind, args in steps if kind == "RUN" and "pip install" in args]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    requirements = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    assert requirements == pyproject_dependencies()
    assert all(re.search(r"==|>=|<|~=", r) for r in requirements), "a dependency without any version bound"
    froms = [args for kind, args in steps if kind == "FROM"]
    assert froms and re.fullmatch(r"python:3\.\d+-slim-\w+", froms[0]), froms


def test_the_container_runs_serve_sh_unchanged(deploy):
    assert (deploy / "scripts" / "serve.sh").read_bytes() == SERVE.read_bytes()
    steps = instructions((deploy / "Dockerfile").read_text(encoding="utf-8"))
    (cmd,) = [args for kind, args in steps if kind == "CMD"]
    assert json.loads(cmd) == ["bash", "scripts/serve.sh", "civcas.db"]
    # The settings the container serves with are serve.sh's, the ones every test runs with.
    deployed = {}
    for name, value in re.findall(r"--setting (\w+) (\S+)", (deploy / "scripts" / "serve.sh").read_text()):
        deployed[name] = {"on": True, "off": False}.get(value, int(value) if value.isdigit() else value)
    assert deployed == production_settings() and deployed
    env = dict(args.split("=", 1) for kind, line in steps if kind == "ENV" for args in line.split())
    assert env["HOST"] == "0.0.0.0" and env["PORT"].isdigit()


def test_every_file_the_command_reads_is_copied(deploy, built_db):
    paths = serve_paths(SERVE.read_text(encoding="utf-8"))
    assert {"metadata.yml", "plugins", "docs"} <= set(paths), paths
    steps = instructions((deploy / "Dockerfile").read_text(encoding="utf-8"))
    copied = {args.split()[0].rstrip("/") for kind, args in steps if kind == "COPY"}
    assert set(paths) | {"civcas.db", "scripts/serve.sh"} <= copied
    for path in paths:
        source, target = ROOT / path, deploy / path
        if source.is_dir():
            compare = filecmp.dircmp(source, target, ignore=["__pycache__"])
            assert not (compare.left_only or compare.right_only or compare.diff_files), path
            for name in compare.common_files:
                assert filecmp.cmp(source / name, target / name, shallow=False), f"{path}/{name}"
        else:
            assert filecmp.cmp(source, target, shallow=False), path
    assert (deploy / "civcas.db").read_bytes() == built_db.read_bytes()


def test_the_folder_is_never_committed_and_only_ever_rewritten(deploy, built_db, tmp_path):
    assert (deploy / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    stray = deploy / "left-over"
    stray.write_text("x")
    assert generate(built_db, deploy).returncode == 0
    assert not stray.exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = generate(built_db, foreign)
    assert result.returncode != 0 and (foreign / "notes.txt").read_text() == "keep me"


def test_the_folder_serves_the_site_as_the_container_would(deploy):
    venv = deploy / ".venv"
    if not (ROOT / ".venv" / "bin" / "datasette").exists():
        pytest.skip("needs the project's .venv (make install)")
    venv.symlink_to(ROOT / ".venv")  # the image's `python -m venv .venv && pip install <the same pins>`
    port = free_port()
    log = deploy.parent / "serve.log"
    env = {key: value for key, value in os.environ.items() if key not in ("DATASETTE", "HOST")}
    env.update(HOST="127.0.0.1", PORT=str(port))
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "scripts/serve.sh", "civcas.db"], cwd=deploy, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(base + "/-/settings.json", timeout=2) as response:
                    served = json.load(response)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        for name, value in production_settings().items():
            assert served[name] == value, name
        with urllib.request.urlopen(base + "/-/plugins.json", timeout=10) as response:
            plugins = {p["name"] for p in json.load(response)}
        assert {p.name for p in (deploy / "plugins").glob("*.py")} <= plugins
        with urllib.request.urlopen(base + "/civcas/incidents.json?_shape=array&_size=1", timeout=10) as response:
            assert len(json.load(response)) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
