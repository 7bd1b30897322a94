#!/usr/bin/env bash
# An outside x402 facilitator for tests and the demo: the official `x402` package's own
# facilitator (PyPI `x402`, the venv scripts/x402-client.sh installs) behind x402's HTTP API,
# scripts/reference/x402_facilitator.py. It signs settlements with $X402_FACILITATOR_KEY.
#   scripts/x402-facilitator.sh --rpc URL --network eip155:CHAIN_ID [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PROVDB_X402_VENV:-$HOME/.cache/provdb/x402-venv}"
bash scripts/x402-client.sh --install
exec "$VENV/bin/python" -u scripts/reference/x402_facilitator.py "$@"
