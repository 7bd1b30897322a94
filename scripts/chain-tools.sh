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
source "$HERE/npm-pinned.sh"
npm_pinned_install chain-tools "$HERE/reference/chain-tools" "node_modules/@foundry-rs/cast-linux-amd64/package.json" "solc, anvil and cast"
DEST="$NPM_PINNED_DEST"
MODULES="$DEST/node_modules"
log() { echo "chain-tools: $*" >&2; }
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
