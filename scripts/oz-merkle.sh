#!/usr/bin/env bash
# OpenZeppelin's StandardMerkleTree (npm @openzeppelin/merkle-tree 1.0.8, every dependency pinned
# by scripts/reference/oz-merkle/package-lock.json) as a command: the reference that provdb's
# Merkle tree (storage/src/merkle.rs) is tested against.
#
#   scripts/oz-merkle.sh < leaves.json   prints {"root", "proofs"} (see scripts/reference/oz_merkle.mjs)
#   scripts/oz-merkle.sh --install       only installs; prints nothing and needs no network when
#                                        the pinned packages are already there
#
# Installs once, with `npm ci`, into ${PROVDB_NPM:-$HOME/.cache/provdb/npm}/oz-merkle-<lock hash>.
# The directory appears complete or not at all (installed beside it, then renamed), so concurrent
# test runs can share it. Needs node >= 18 and npm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/npm-pinned.sh"
npm_pinned_install oz-merkle "$HERE/reference/oz-merkle" "node_modules/@openzeppelin/merkle-tree/package.json" "@openzeppelin/merkle-tree"
DEST="$NPM_PINNED_DEST"
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
OZ_MERKLE_DIR="$DEST" exec node "$HERE/reference/oz_merkle.mjs"
