#!/usr/bin/env bash
# The whole test suite: installs what the build needs, fetches the models (pip, from PyPI, into
# ~/.cache/provdb/models, checked by sha256), then runs every test of every crate, then checks
# that the docs agree with the code (scripts/check-docs.sh: the crate graph, doc paths).
# Always --workspace: building one package alone resolves other dependency features and
# rebuilds RocksDB's C++.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
cargo test --workspace --all-targets "$@"
bash scripts/check-docs.sh
