#!/usr/bin/env bash
# ethers (npm ethers 6.17.0, every dependency pinned by scripts/reference/ethers/package-lock.json)
# as a command: the wallet library that provdb's EIP-712 record signatures
# (src/ingest/signature.rs) are tested against, signing with `signTypedData` and checking with
# `verifyTypedData`.
#
#   scripts/ethers.sh < request.json   prints {"signatures", "signers"} (see
#                                      scripts/reference/ethers_eip712.mjs)
#   scripts/ethers.sh --install        only installs; prints nothing and needs no network when
#                                      the pinned packages are already there
#
# Installs once, with `npm ci`, into ${PROVDB_NPM:-$HOME/.cache/provdb/npm}/ethers-<lock hash>.
# The directory appears complete or not at all (installed beside it, then renamed), so concurrent
# test runs can share it. Needs node >= 18 and npm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/npm-pinned.sh"
npm_pinned_install ethers "$HERE/reference/ethers" "node_modules/ethers/package.json" "ethers"
DEST="$NPM_PINNED_DEST"
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
ETHERS_DIR="$DEST" exec node "$HERE/reference/ethers_eip712.mjs"
