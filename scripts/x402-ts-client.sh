#!/usr/bin/env bash
# The official x402 TypeScript client (npm @x402/fetch with @x402/evm and viem, every package
# pinned by scripts/reference/x402-ts/package-lock.json) against a running
# `provdb serve --x402`: an agent with only a wallet asks $PROVDB_URL a cited question with no
# API key and pays the 402 with the key in $X402_PRIVATE_KEY (asking $PROVDB_MODEL, the
# model the server serves) (scripts/reference/x402_client.mjs).
#
#   scripts/x402-ts-client.sh DATANET "question" [MAX_TOKENS]   prints one JSON object
#   scripts/x402-ts-client.sh --install                         only installs
#
# Installs once, with `npm ci`, into ${PROVDB_NPM:-$HOME/.cache/provdb/npm}/x402-ts-<lock hash>.
# Needs node >= 20 (global fetch) and npm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/npm-pinned.sh"
npm_pinned_install x402-ts "$HERE/reference/x402-ts" "node_modules/@x402/fetch/package.json" "the x402 TypeScript client"
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
X402_TS_DIR="$NPM_PINNED_DEST" exec node "$HERE/reference/x402_client.mjs" "$@"
