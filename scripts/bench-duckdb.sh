#!/usr/bin/env bash
# The DuckDB anchor for `provdb bench sql`: installs DuckDB (PyPI `duckdb`, pinned) into a venv
# under ~/.cache/provdb once (a prebuilt wheel, seconds), then runs
# scripts/reference/duckdb_bench.py with the given arguments (--parquet F --threads 2 --reps 3
# --query NAME SQL ...), which prints one JSON object. `bash scripts/bench-duckdb.sh
# --install-only` just builds the venv (the bench runs it first, to fail before measuring).
set -euo pipefail
cd "$(dirname "$0")/.."
DUCKDB_VERSION=2.0.0
VENV="${PROVDB_DUCKDB_VENV:-$HOME/.cache/provdb/duckdb-venv}"
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" >/dev/null 2>&1; then
  echo "bench-duckdb: installing duckdb==$DUCKDB_VERSION in $VENV (one time)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION" >&2
fi
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
exec "$VENV/bin/python" scripts/reference/duckdb_bench.py "$@"
