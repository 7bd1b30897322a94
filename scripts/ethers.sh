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
PIN_DIR="$HERE/reference/ethers"
NPM_ROOT="${PROVDB_NPM:-$HOME/.cache/provdb/npm}"

log() { echo "ethers: $*" >&2; }

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
DEST="$NPM_ROOT/ethers-${LOCK_HASH:0:16}"

install() {
  if [ -f "$DEST/node_modules/ethers/package.json" ]; then
    return 0
  fi
  log "installing ethers (pinned in $PIN_DIR) into $DEST"
  mkdir -p "$NPM_ROOT"
  local tmp
  tmp="$(mktemp -d "$NPM_ROOT/.ethers.XXXXXX")"
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
  [ -f "$DEST/node_modules/ethers/package.json" ] ||
    { log "$DEST is incomplete; remove it and run again"; exit 1; }
}

install
if [ "${1:-}" = "--install" ]; then
  exit 0
fi
ETHERS_DIR="$DEST" exec node "$HERE/reference/ethers_eip712.mjs"
