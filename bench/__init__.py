"""Benchmark harness for civcas: synthetic raw data, a raw-SQLite baseline, the build and the site.

    python -m bench.run [--incidents N] [--figures-per-incident F] [--workdir DIR] [--skip-site] [--quick]

Modules:
  bench.generate  synthetic raw/ folder that passes validation, generated from civcas.schema (cached)
  bench.baseline  the same tables, indexes and FTS5 tables made by the sqlite3 CLI alone
  bench.measure   wall time and peak RSS of a child process
  bench.site      a real datasette server (scripts/serve.sh) and timed requests against it
  bench.phases    the build run in-process with a timer around each step; --patch tries a proposed fix
  bench.loadtest  a bounded concurrent load against the production server (make loadtest)
  bench.run       all of the above, a table of results and <workdir>/results.json

See docs/performance.md for the figures measured and the known hot spots.
"""
