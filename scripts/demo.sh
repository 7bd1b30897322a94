#!/usr/bin/env bash
# The demo: builds provdb, converts the Cranfield collection into signed records, creates a
# Datanet that requires signatures, ingests it and prints its stats. Uses a fresh ./.demo-data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
cargo build -p provdb-server --bin provdb
rm -rf .demo-data
"$CARGO_TARGET_DIR/debug/provdb" --data .demo-data demo --collection data/cranfield
echo
echo "Try: $CARGO_TARGET_DIR/debug/provdb --data .demo-data records cranfield --limit 5"
