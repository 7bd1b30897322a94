#!/usr/bin/env bash
# Installs what the web UI's end-to-end test (server/tests/ui/e2e.mjs) needs, and nothing when it
# is already there: Debian's `chromium` package (apt-get; the test drives /usr/bin/chromium, with
# fonts-dejavu-core so that its screenshots have legible text without the recommended packages) and
# the npm package playwright-core (pinned below; playwright-core never downloads a browser of its
# own, unlike `playwright`), installed into ${PROVDB_NPM_BROWSER:-$HOME/.cache/provdb/npm-browser}.
#
#   scripts/browser-deps.sh                    installs, then prints the NODE_PATH to use
#   scripts/browser-deps.sh --print-node-path  the same (only the NODE_PATH goes to stdout)
#
#   NODE_PATH="$(scripts/browser-deps.sh)" node server/tests/ui/e2e.mjs
#
# The npm directory appears complete or not at all (installed beside it, then renamed), so
# concurrent runs can share it. Needs node >= 18 and npm.
set -euo pipefail

PLAYWRIGHT_CORE_VERSION="1.65.2"
NPM_DIR="${PROVDB_NPM_BROWSER:-$HOME/.cache/provdb/npm-browser}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { echo "browser-deps: $*" >&2; }

case "${1:-}" in
  ""|--print-node-path) ;;
  *) log "usage: $0 [--print-node-path]"; exit 2 ;;
esac

install_chromium() {
  if [ -x "$CHROMIUM" ]; then
    return 0
  fi
  log "installing Debian's chromium package (for the UI's end-to-end test)"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
  [ -x "$CHROMIUM" ] || { log "$CHROMIUM is still missing after apt-get install chromium"; exit 1; }
}

installed_version() {
  local pkg="$NPM_DIR/node_modules/playwright-core/package.json"
  [ -f "$pkg" ] || return 1
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg"
}

install_playwright_core() {
  if [ "$(installed_version 2>/dev/null || true)" = "$PLAYWRIGHT_CORE_VERSION" ]; then
    return 0
  fi
  command -v node >/dev/null 2>&1 || { log "node not found; install Node.js 18 or newer (with npm)"; exit 1; }
  command -v npm >/dev/null 2>&1 || { log "npm not found; install Node.js 18 or newer (with npm)"; exit 1; }
  log "installing npm playwright-core@$PLAYWRIGHT_CORE_VERSION into $NPM_DIR"
  local parent tmp
  parent="$(dirname "$NPM_DIR")"
  mkdir -p "$parent"
  tmp="$(mktemp -d "$parent/.npm-browser.XXXXXX")"
  chmod 755 "$tmp"
  cat >"$tmp/package.json" <<EOF
{
  "name": "provdb-browser-test",
  "private": true,
  "description": "playwright-core for server/tests/ui/e2e.mjs (written by scripts/browser-deps.sh)",
  "dependencies": {
    "playwright-core": "$PLAYWRIGHT_CORE_VERSION"
  }
}
EOF
  if ! (cd "$tmp" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        npm install --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1); then
    log "npm install failed:"
    cat "$tmp/npm.log" >&2
    rm -rf "$tmp"
    exit 1
  fi
  rm -f "$tmp/npm.log"
  # An older pin (or a broken copy) is replaced; another run may have finished first.
  if [ -d "$NPM_DIR" ] && [ "$(installed_version 2>/dev/null || true)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
    rm -rf "$NPM_DIR"
  fi
  mv -T "$tmp" "$NPM_DIR" 2>/dev/null || rm -rf "$tmp"
  [ "$(installed_version 2>/dev/null || true)" = "$PLAYWRIGHT_CORE_VERSION" ] ||
    { log "$NPM_DIR is incomplete; remove it and run again"; exit 1; }
}

install_chromium
install_playwright_core
echo "$NPM_DIR/node_modules"
