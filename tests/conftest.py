"""Shared fixtures: a real civcas.db built from raw/, and Datasette configured as in production."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "raw"
SERVE = ROOT / "scripts" / "serve.sh"
PLUGINS = ROOT / "plugins"


def plugin_file(name: str, as_name: str | None = None):
    """A fresh module made from plugins/<name>.py (Datasette loads the same file under its own name)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(as_name or name, PLUGINS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the order test files are handed out in ----------------------------------------------------------------
# pytest-xdist hands whole files (--dist loadfile) to the test processes, by default those with the most tests
# first: a file of two long property tests went last and ran ~10 s alone at the end. With --no-loadscope-reorder
# it hands them out in collection order, which is set here: longest first (longest processing time first), from
# each file's test time in tests/durations.json (`make test-durations` measures it again); a file it does not
# name goes first. Only the order changes, never which tests run.
DURATIONS = ROOT / "tests" / "durations.json"


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help="write each test file's total test time to tests/durations.json")


def stored_durations() -> dict[str, float]:
    import json

    return json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}


def pytest_collection_modifyitems(config, items):
    seconds = stored_durations()
    first = max(seconds.values(), default=0) + 1
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::")[0], first))  # stable: a file's order stays


_measured: dict[str, float] = {}


def pytest_runtest_logreport(report):
    # Setup, call and teardown: what the file costs its process. Under xdist the reports reach the controller.
    file = report.nodeid.split("::")[0]
    _measured[file] = _measured.get(file, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    import json

    if session.config.getoption("store_durations") and not os.environ.get("PYTEST_XDIST_WORKER") and _measured:
        known = stored_durations()  # a partial run updates its files
        known |= {file: round(seconds, 1) for file, seconds in _measured.items()}
        DURATIONS.write_text(json.dumps(dict(sorted(known.items())), indent=1) + "\n")


def metadata_yml() -> dict:
    """metadata.yml as Datasette reads it (a fresh copy each call: Datasette may change what it is given). With
    libyaml's parser where PyYAML has it: the same data, ~15 times faster than the pure-Python one (0.16 s)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((ROOT / "metadata.yml").read_text(encoding="utf-8"), Loader=loader)


def registered_plugin(name: str):
    """The module Datasette registered from plugins/<name>.py (the one its hooks run), once a Datasette exists."""
    from datasette.plugins import pm

    return next(p for registered, p in pm.list_name_plugin() if registered.endswith(f"{name}.py"))


def run_build(*args: str) -> subprocess.CompletedProcess:
    """Run the build contract exactly as a curator would: python build.py ARGS."""
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def build_in_process(*args: str) -> subprocess.CompletedProcess:
    """The same contract as run_build, in this interpreter: ~0.2 s faster a build, for the tests that build hundreds
    of broken folders. An exception escapes as an error of the test instead of a traceback in stderr."""
    import contextlib
    import io

    from civcas.build import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(args))
    return subprocess.CompletedProcess(["build.py", *args], code, out.getvalue(), err.getvalue())


def http_get(url: str, timeout: float = 30, limit: int | None = None, headers: dict | None = None):
    """GET url from a real server: (status, headers, body), error statuses included (no exception)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.headers, r.read() if limit is None else r.read(limit)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read() if limit is None else e.read(limit)


def sql_rows(built_db, sql: str, params=()) -> list[dict]:
    """Rows of a read-only query on the built database, as dicts."""
    import sqlite3

    conn = sqlite3.connect(f"file:{built_db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def production_settings() -> dict[str, object]:
    """The --setting flags of scripts/serve.sh, the one place production settings live."""
    settings = {}
    for name, value in re.findall(r"--setting (\w+) (\S+)", SERVE.read_text()):
        settings[name] = {"on": True, "off": False}.get(value, int(value) if value.isdigit() else value)
    return settings


def made_once(tmp_path_factory, name: str, make) -> Path:
    """A folder made by make(folder) once per test run: with pytest-xdist, the first worker to ask makes it (the others
    wait on a lock) and every worker reads the same files. Only for what the tests never write to."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's temporary folder, shared by its workers
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    """civcas.db built from the real raw/ folder by build.py (read-only: copy it to change it)."""
    def make(folder: Path) -> None:
        result = run_build("--raw", str(RAW), "--db", str(folder / "civcas.db"))
        assert result.returncode == 0, result.stderr

    return made_once(tmp_path_factory, "built", make) / "civcas.db"


@pytest.fixture(scope="session")
def cut_raw(tmp_path_factory) -> Path:
    """A cut of raw/ (rawfiles.cut_of_raw: its first incidents and every row they reach), for the tests that build
    a broken copy again and again (read-only: copy it to change it)."""
    from rawfiles import CUT_INCIDENTS, cut_of_raw

    def make(folder: Path) -> None:
        cut_of_raw(RAW, folder / "raw", CUT_INCIDENTS)
        result = run_build("--raw", str(folder / "raw"), "--db", str(folder / "civcas.db"))
        assert result.returncode == 0, result.stderr

    return made_once(tmp_path_factory, "cut", make) / "raw"


@pytest.fixture(scope="session")
def cut_db(cut_raw) -> Path:
    """civcas.db built from cut_raw by build.py (read-only: copy it to change it)."""
    return cut_raw.parent / "civcas.db"


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


@pytest.fixture(scope="module")
def ds(built_db):
    """Datasette in process, started once per module (its start-up is ~0.1 s, and test_site has ~100 tests);
    each async test drives it from its own event loop, as a server's requests would."""
    import asyncio

    datasette = make_datasette(built_db)
    asyncio.run(datasette.invoke_startup())
    return datasette


def make_datasette(built_db):
    """Datasette in process with the real metadata.yml, plugins and production settings."""
    from datasette.app import Datasette

    return Datasette(
        immutables=[str(built_db)],
        metadata=metadata_yml(),
        settings=production_settings(),
        static_mounts=[("docs", str(ROOT / "docs"))],
        plugins_dir=str(PLUGINS),
        template_dir=str(ROOT / "templates"),
    )


@pytest.fixture(scope="module")
def ds_rows(built_db):
    """Run a canned query through Datasette (synchronously): ds_rows(name, params) -> list of row dicts."""
    import asyncio
    from urllib.parse import urlencode

    datasette = make_datasette(built_db)
    asyncio.run(datasette.invoke_startup())

    async def fetch(name, params):
        response = await datasette.client.get(f"/civcas/{name}.json?" + urlencode({**params, "_shape": "array"}))
        assert response.status_code == 200, response.text[:500]
        return response.json()

    return lambda name, params: asyncio.run(fetch(name, params))


# --- a real server, started exactly as in production -----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(served):
    """The base URL of scripts/serve.sh on the built database."""
    return served[0]


@pytest.fixture(scope="session")
def served(built_db, tmp_path_factory):
    """scripts/serve.sh on the built database, exactly as in production; yields (base URL, server pid).
    serve.sh execs datasette, so the pid is the server's own. One server per test process (per xdist worker):
    every test that uses it only reads, so the modules share it instead of starting one each."""
    with serving(built_db, tmp_path_factory.mktemp("server")) as running:
        yield running


# bench/generate.py's synthetic data at 10,000 incidents (30,000 figures): the map's 10k-point test and the
# memory test of the CSV stream and the database download (44 MB) share one build (and one server per process).
SYNTHETIC_INCIDENTS = 10_000


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory) -> Path:
    """A build of bench.generate's data at SYNTHETIC_INCIDENTS incidents (~4 s to make; read-only)."""
    if str(ROOT) not in sys.path:  # bench/ is run from the repository root, not installed
        sys.path.insert(0, str(ROOT))
    from bench.generate import Spec, generate

    def make(work: Path) -> None:
        generate(Spec(SYNTHETIC_INCIDENTS), work / "raw")
        result = build_in_process("--raw", str(work / "raw"), "--db", str(work / "civcas.db"))
        assert result.returncode == 0, result.stderr[-2000:]

    return made_once(tmp_path_factory, "synthetic", make) / "civcas.db"


@pytest.fixture(scope="session")
def synthetic_served(synthetic_db, tmp_path_factory):
    """scripts/serve.sh on synthetic_db, as in production; yields (base URL, server pid)."""
    with serving(synthetic_db, tmp_path_factory.mktemp("synthetic-server")) as running:
        yield running


@contextlib.contextmanager
def serving(db_path: Path, log_dir: Path):
    """Run scripts/serve.sh on db_path until the block ends; yields (base URL, server pid)."""
    port = free_port()
    log_path = log_dir / "serve.log"
    log = open(log_path, "w")
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(["bash", str(SERVE), str(db_path)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve.sh exited with {proc.returncode}:\n{log_path.read_text()}", pytrace=False)
            try:
                with urllib.request.urlopen(base + "/-/versions.json", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve.sh did not respond within 30 s:\n{log_path.read_text()}", pytrace=False)
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- a real browser ----------------------------------------------------------------------------------

# The browser never reaches the network: every request for another host (a name or an address) goes to a proxy on
# a closed local port and fails; loopback, where the servers under test listen, is never proxied. (Playwright's
# request routing did the same, but it also turns off the browser's cache, so every page fetched its style sheet
# and scripts again: ~150 against ~80-100 ms a page.)
NO_NETWORK = "--proxy-server=http://127.0.0.1:9"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", NO_NETWORK]


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an event loop running in this thread,
    # which would break the pytest-asyncio tests collected after this file.
    executable = chromium_path()
    if not executable:
        unavailable("Chromium is not installed (/usr/bin/chromium, or chromium on PATH)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
    except Exception as error:  # a broken Chromium is a failure, not a skip
        playwright.stop()
        pytest.fail(f"could not launch {executable}: {error}", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()


@contextlib.contextmanager
def local_page(browser):
    """A fresh page that records JavaScript errors, dialogs and CSP violations; it cannot reach the network
    (LAUNCH_ARGS)."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.js_errors, page.dialogs, page.csp_violations = [], [], []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: page.csp_violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    try:
        yield page
    finally:
        context.close()
