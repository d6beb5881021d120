# civcas: `make serve` builds and serves the site; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8001
# Python keeps compiled modules in __pycache__ (git-ignored) even where the environment says not to: otherwise every
# test process and server compiles the project's modules again, and pytest rewrites every test module's asserts
# anew in each process (~2 s of each test process's start-up).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install build check metadata serve test test-durations test-long bench loadtest clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

civcas.db: $(VENV)/.installed build.py civcas/*.py raw/*.csv CHANGELOG.md
	$(PY) build.py --raw raw --db civcas.db

build: civcas.db

check: install
	$(PY) build.py --check

metadata: install
	$(PY) -m civcas.metadata
	$(PY) -m civcas.datapackage

serve: civcas.db
	PORT=$(PORT) scripts/serve.sh civcas.db

test: install
	$(PY) -m pytest

# Each test file's test time into tests/durations.json, which hands the longest files out first.
test-durations: install
	$(PY) -m pytest --store-durations

# The property-based and fuzz tests with many more examples (minutes, not seconds).
test-long: install
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/test_properties.py tests/test_fuzz.py

bench: install
	$(PY) -m bench.run

# Bounded load on loopback against scripts/serve.sh: 60 s at each of 8, 32 and 64 connections, a realistic mix of
# URLs; requests/s, errors and p50/p95/p99 per URL group, results in bench/data/loadtest-results.json.
LOADTEST_ARGS ?= --seconds 60 --levels 8,32,64
loadtest: civcas.db
	$(PY) -m bench.loadtest --db civcas.db $(LOADTEST_ARGS)

# A Docker build context in deploy/ (output, never committed): the pins of pyproject.toml and the command and
# settings of scripts/serve.sh, read from those files (scripts/deploy_files.py).
.PHONY: deploy-files
deploy-files: civcas.db
	$(PY) scripts/deploy_files.py --db civcas.db --out deploy

clean:
	rm -rf civcas.db .serving-*
