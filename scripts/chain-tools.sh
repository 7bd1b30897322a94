#!/usr/bin/env bash
# The chain tools provdb's contracts and chain tests use, from npm, every package pinned by
# scripts/reference/chain-tools/package-lock.json: solc 0.8.30 (the JavaScript build of the
# Solidity compiler), and anvil and cast 1.7.1 from Foundry (the npm packages carry the real
# linux-amd64 binaries).
#
#   scripts/chain-tools.sh --install   only installs; needs no network once installed
#   scripts/chain-tools.sh path anvil  prints the path of the anvil binary (also: cast)
#   scripts/chain-tools.sh compile     compiles chain/contracts/*.sol into chain/artifacts/
#                                      (scripts/reference/compile_contracts.mjs)
#   scripts/chain-tools.sh compile --check DIR   compiles into DIR instead (the staleness test)
#
# Installs once, with `npm ci`, into ${PROVDB_NPM:-$HOME/.cache/provdb/npm}/chain-tools-<lock
# hash>; the directory appears complete or not at all (installed beside it, then renamed), so
# concurrent test runs can share it. Needs node >= 20 and npm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PIN_DIR="$HERE/reference/chain-tools"
NPM_ROOT="${PROVDB_NPM:-$HOME/.cache/provdb/npm}"

log() { echo "chain-tools: $*" >&2; }

command -v node >/dev/null 2>&1 || { log "node not found; install Node.js 20 or newer (with npm)"; exit 1; }
command -v npm >/dev/null 2>&1 || { log "npm not found; install Node.js 20 or newer (with npm)"; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

LOCK_HASH="$(sha256_of "$PIN_DIR/package-lock.json")"
DEST="$NPM_ROOT/chain-tools-${LOCK_HASH:0:16}"
MODULES="$DEST/node_modules"
MARKER="$MODULES/@foundry-rs/cast-linux-amd64/package.json"

install() {
  if [ -f "$MARKER" ]; then
    return 0
  fi
  log "installing solc, anvil and cast (pinned in $PIN_DIR) into $DEST"
  mkdir -p "$NPM_ROOT"
  local tmp
  tmp="$(mktemp -d "$NPM_ROOT/.chain-tools.XXXXXX")"
  chmod 755 "$tmp"
  cp "$PIN_DIR/package.json" "$PIN_DIR/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1); then
    log "npm ci failed:"
    cat "$tmp/npm.log" >&2
    rm -rf "$tmp"
    exit 1
  fi
  rm -f "$tmp/npm.log"
  mv -T "$tmp" "$DEST" 2>/dev/null || rm -rf "$tmp"
  [ -f "$MARKER" ] || { log "$DEST is incomplete; remove it and run again"; exit 1; }
}

install
case "${1:-}" in
  --install) ;;
  path)
    case "${2:-}" in
      anvil|cast)
        bin="$MODULES/@foundry-rs/$2-linux-amd64/bin/$2"
        [ -x "$bin" ] || chmod +x "$bin"
        echo "$bin"
        ;;
      *) log "usage: chain-tools.sh path anvil|cast"; exit 1 ;;
    esac
    ;;
  compile)
    out="$HERE/../chain/artifacts"
    if [ "${2:-}" = "--check" ]; then out="${3:?compile --check needs a directory}"; fi
    NODE_PATH="$MODULES" exec node "$HERE/reference/compile_contracts.mjs" "$HERE/../chain/contracts" "$out"
    ;;
  *) log "usage: chain-tools.sh --install | path anvil|cast | compile [--check DIR]"; exit 1 ;;
esac
