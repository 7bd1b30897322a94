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
PIN_DIR="$HERE/reference/oz-merkle"
NPM_ROOT="${PROVDB_NPM:-$HOME/.cache/provdb/npm}"

log() { echo "oz-merkle: $*" >&2; }

command -v node >/dev/null 2>&1 || { log "node not found; install Node.js 18 or newer (with npm)"; exit 1; }
command -v npm >/dev/null 2>&1 || { log "npm not found; install Node.js 18 or newer (with npm)"; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

LOCK_HASH="$(sha256_of "$PIN_DIR/package-lock.json")"
DEST="$NPM_ROOT/oz-merkle-${LOCK_HASH:0:16}"

install() {
  if [ -f "$DEST/node_modules/@openzeppelin/merkle-tree/package.json" ]; then
    return 0
  fi
  log "installing @openzeppelin/merkle-tree (pinned in $PIN_DIR) into $DEST"
  mkdir -p "$NPM_ROOT"
  local tmp
  tmp="$(mktemp -d "$NPM_ROOT/.oz-merkle.XXXXXX")"
  chmod 755 "$tmp"
  cp "$PIN_DIR/package.json" "$PIN_DIR/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1); then
    log "npm ci failed:"
    cat "$tmp/npm.log" >&2
    rm -rf "$tmp"
    exit 1
  fi
  rm -f "$tmp/npm.log"
  # Another run may have finished first: then keep its copy.
  mv -T "$tmp" "$DEST" 2>/dev/null || rm -rf "$tmp"
  [ -f "$DEST/node_modules/@openzeppelin/merkle-tree/package.json" ] ||
    { log "$DEST is incomplete; remove it and run again"; exit 1; }
}

install
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
OZ_MERKLE_DIR="$DEST" exec node "$HERE/reference/oz_merkle.mjs"
