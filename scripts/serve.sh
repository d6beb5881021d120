#!/usr/bin/env bash
# Serve civcas.db exactly as a public deployment would. Every production setting is here:
# keep these settings in sync with the publish commands (--extra-options) in README.md, "Publishing".
#   scripts/serve.sh [DB]   (HOST and PORT from the environment; defaults 127.0.0.1:8001)
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-civcas.db}"
# Serve a snapshot: a hard link to the file as it is now, in a folder named after this process (exec keeps
# the pid). build.py replaces civcas.db by renaming a new file over it; the snapshot keeps the old file, so a
# running site never mixes old counts (immutable mode caches them) with new rows, or reads a file being
# replaced. A restart serves the new build. Snapshots of servers no longer running are removed here.
DIR="$(cd "$(dirname "$DB")" && pwd)"
for old in "$DIR"/.serving-*; do
  [ -d "$old" ] || continue
  pid="${old##*.serving-}"
  if ! kill -0 "$pid" 2>/dev/null; then rm -rf "$old"; fi
done
SNAPSHOT_DIR="$DIR/.serving-$$"
mkdir -p "$SNAPSHOT_DIR"
ln -f "$DB" "$SNAPSHOT_DIR/$(basename "$DB")" 2>/dev/null || cp "$DB" "$SNAPSHOT_DIR/$(basename "$DB")"
DB="$SNAPSHOT_DIR/$(basename "$DB")"
DATASETTE="${DATASETTE:-.venv/bin/datasette}"
# A ceiling on the whole process's memory (virtual, in MB; 0 = none): plugins/civcas_limits.py bounds
# each request, this bounds everything else. Cloud Run and Fly set the same ceiling with --memory / VM size.
MEMORY_LIMIT_MB="${MEMORY_LIMIT_MB:-2048}"
if [ "$MEMORY_LIMIT_MB" != "0" ]; then ulimit -v $((MEMORY_LIMIT_MB * 1024)); fi
# Row counts and the file's hash: taken at start-up by plugins/civcas_inspect.py (what `datasette inspect` wrote).
exec "$DATASETTE" serve -i "$DB" \
  --metadata metadata.yml \
  --plugins-dir plugins \
  --template-dir templates \
  --static docs:docs \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-8001}" \
  --setting sql_time_limit_ms 2000 \
  --setting max_returned_rows 2000 \
  --setting default_page_size 50 \
  --setting suggest_facets off \
  --setting facet_time_limit_ms 300 \
  --setting facet_suggest_time_limit_ms 50 \
  --setting num_sql_threads 3 \
  --setting allow_download on \
  --setting allow_csv_stream on \
  --setting max_csv_mb 100 \
  --setting default_cache_ttl 300 \
  --setting truncate_cells_html 300 \
  --setting trace_debug off \
  --setting template_debug off
