#!/usr/bin/env bash
# The outside reference of provdb's near-duplicate detection: the Python datasketch package
# (pinned with every dependency in scripts/reference/datasketch-requirements.txt), installed
# into a venv under ~/.cache/provdb once (`--install` does only that), then
# scripts/reference/datasketch_minhash.py, which reads shingle sets and provdb's permutations
# as JSON on stdin and prints datasketch's signatures and LSH candidates (index/tests read it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PROVDB_DATASKETCH_VENV:-$HOME/.cache/provdb/datasketch-venv}"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('datasketch') != '2.0.0')" >/dev/null 2>&1; then
  echo "datasketch: installing datasketch==2.0.0 in $VENV (one time)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-deps -r scripts/reference/datasketch-requirements.txt >&2
fi
if [ "${1:-}" = "--install" ]; then exit 0; fi
exec "$VENV/bin/python" scripts/reference/datasketch_minhash.py "$@"
