# Sourced, not run: installs a pinned set of npm packages once, shared by scripts/oz-merkle.sh,
# scripts/ethers.sh and scripts/chain-tools.sh.
#
#   npm_pinned_install NAME PIN_DIR MARKER_RELATIVE_PATH WHAT
#
# installs PIN_DIR's package.json and package-lock.json with `npm ci` into
# ${PROVDB_NPM:-$HOME/.cache/provdb/npm}/NAME-<first 16 hex digits of the lock's sha256>, and sets
# NPM_PINNED_DEST to that directory. The directory appears complete or not at all (installed
# beside it, then renamed), so concurrent test runs can share it; it counts as complete when
# MARKER_RELATIVE_PATH exists in it. Needs no network once installed. Needs node and npm.

npm_pinned_log() { echo "$NPM_PINNED_NAME: $*" >&2; }

npm_pinned_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

npm_pinned_install() {
  NPM_PINNED_NAME="$1"
  local pin_dir="$2" marker="$3" what="$4"
  local root="${PROVDB_NPM:-$HOME/.cache/provdb/npm}"
  for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 ||
      { npm_pinned_log "$tool not found; install Node.js 20 or newer (with npm)"; exit 1; }
  done
  local hash
  hash="$(npm_pinned_sha256 "$pin_dir/package-lock.json")"
  NPM_PINNED_DEST="$root/$NPM_PINNED_NAME-${hash:0:16}"
  if [ -f "$NPM_PINNED_DEST/$marker" ]; then
    return 0
  fi
  npm_pinned_log "installing $what (pinned in $pin_dir) into $NPM_PINNED_DEST"
  mkdir -p "$root"
  local tmp
  tmp="$(mktemp -d "$root/.$NPM_PINNED_NAME.XXXXXX")"
  chmod 755 "$tmp"
  cp "$pin_dir/package.json" "$pin_dir/package-lock.json" "$tmp/"
  if ! (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$tmp/npm.log" 2>&1); then
    npm_pinned_log "npm ci failed:"
    cat "$tmp/npm.log" >&2
    rm -rf "$tmp"
    exit 1
  fi
  rm -f "$tmp/npm.log"
  # Another run may have finished first: then keep its copy.
  mv -T "$tmp" "$NPM_PINNED_DEST" 2>/dev/null || rm -rf "$tmp"
  [ -f "$NPM_PINNED_DEST/$marker" ] ||
    { npm_pinned_log "$NPM_PINNED_DEST is incomplete; remove it and run again"; exit 1; }
}
