#!/usr/bin/env bash
# The demo: builds provdb, converts the Cranfield collection into signed records, creates a
# Datanet that requires signatures, ingests and indexes it, answers a question with citations
# and a fee, shows who is paid (SQL over the ledger), verifies the ledger and closes an epoch.
# Uses a fresh ./.demo-data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
# --workspace: the same feature resolution as the tests, so nothing is built twice.
cargo build --workspace --bin provdb
rm -rf .demo-data
"$CARGO_TARGET_DIR/debug/provdb" --data .demo-data demo --collection data/cranfield
echo
echo "Try: $CARGO_TARGET_DIR/debug/provdb --data .demo-data ask cranfield \"What is a shock wave?\" --fee 1000"
echo "     $CARGO_TARGET_DIR/debug/provdb --data .demo-data sql \"SELECT contributor, sum(amount_wei) FROM attributions GROUP BY 1 ORDER BY 2 DESC\""
