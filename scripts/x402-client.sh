#!/usr/bin/env bash
# The official x402 Python client (PyPI `x402`, pinned with every dependency in
# scripts/reference/x402-requirements.txt) against a running `provdb serve --x402`: installs it
# into a venv under ~/.cache/provdb once (`--install` does only that), then runs
# scripts/reference/x402_client.py, an agent with only a wallet: it asks $PROVDB_URL a cited
# question with no API key, pays the 402 with the key in $X402_PRIVATE_KEY (asking $PROVDB_MODEL, the
# model the server serves) and prints one JSON
# object of what it saw (the server tests and scripts/demo.sh read it).
set -euo pipefail
cd "$(dirname "$0")/.."
X402_VERSION=2.25.0
VENV="${PROVDB_X402_VENV:-$HOME/.cache/provdb/x402-venv}"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('x402') != '$X402_VERSION')" >/dev/null 2>&1; then
  echo "x402-client: installing x402==$X402_VERSION in $VENV (one time)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r scripts/reference/x402-requirements.txt >&2
  "$VENV/bin/pip" install -q --no-deps "x402[evm,httpx,requests]==$X402_VERSION" >&2
fi
if [ "${1:-}" = "--install" ]; then exit 0; fi
exec "$VENV/bin/python" scripts/reference/x402_client.py "$@"
