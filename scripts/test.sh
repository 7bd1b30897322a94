#!/usr/bin/env bash
# The whole test suite: installs what the build needs, then runs every test of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
cargo test --workspace --all-targets "$@"
