#!/usr/bin/env bash
# OpenAI's official Python client (PyPI `openai`, pinned) against a running `provdb serve`:
# installs it into a venv under ~/.cache/provdb once (`--install` does only that), then runs
# scripts/reference/openai_client.py, which talks to $PROVDB_URL with $PROVDB_KEY and prints one
# JSON object of what it saw (server/tests/http_openai.rs checks it).
set -euo pipefail
cd "$(dirname "$0")/.."
OPENAI_VERSION=3.63.0
VENV="${PROVDB_OPENAI_VENV:-$HOME/.cache/provdb/openai-venv}"
if ! "$VENV/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" >/dev/null 2>&1; then
  echo "openai-client: installing openai==$OPENAI_VERSION in $VENV (one time)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "openai==$OPENAI_VERSION" >&2
fi
if [ "${1:-}" = "--install" ]; then exit 0; fi
exec "$VENV/bin/python" scripts/reference/openai_client.py "$@"
