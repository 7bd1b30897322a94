#!/usr/bin/env bash
# The dependency audit (CI runs it): cargo-deny (crates.io, pinned) checks every dependency's
# licence against deny.toml, that every crate comes from crates.io, and the duplicate
# versions; then the RustSec advisories, when their database (a git repository on GitHub) can
# be fetched. A machine that cannot reach GitHub says so and skips only that check: it does
# not pass it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$version"; then
  echo "audit: installing cargo-deny $version from crates.io" >&2
  cargo install cargo-deny --version "$version" --locked >&2
fi
cargo deny --log-level error check licenses bans sources
echo "audit: licences, bans and sources ok" >&2
set +e
advisories=$(cargo deny check advisories 2>&1)
status=$?
set -e
if [ $status -eq 0 ]; then
  echo "audit: RustSec advisories ok" >&2
elif grep -q "failed to fetch advisory database" <<<"$advisories"; then
  echo "audit: RustSec advisories SKIPPED: the advisory database cannot be fetched from here" >&2
  grep -m1 "fatal:" <<<"$advisories" >&2 || true
else
  echo "$advisories" >&2
  exit 1
fi
