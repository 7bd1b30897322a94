#!/usr/bin/env bash
# The demo: builds provdb, converts the Cranfield collection into signed records, creates a
# Datanet that requires signatures, ingests and indexes it, answers a question with citations
# and a fee, shows who is paid (SQL over the ledger), verifies the ledger, closes an epoch, and
# syncs it to a local anvil chain (deploy, post the epoch root, anchor the batch, one claim).
# Uses a fresh ./.demo-data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
# --workspace: the same feature resolution as the tests, so nothing is built twice.
cargo build --workspace --bin provdb
rm -rf .demo-data
PROVDB="$CARGO_TARGET_DIR/debug/provdb"
"$PROVDB" --data .demo-data demo --collection data/cranfield

echo "== 12. Sync to a local anvil chain: deploy the contracts, post the epoch, anchor the batch"
ANVIL="$(bash scripts/chain-tools.sh path anvil)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$ANVIL" --port "$PORT" --silent &
ANVIL_PID=$!
trap 'kill "$ANVIL_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
# anvil's first development account (a public test key): the operator, and the claim's gas payer.
# Keys come from the environment or a file (--key-file), never from the command line.
export PROVDB_CHAIN_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
export PROVDB_CLAIM_KEY="$PROVDB_CHAIN_KEY"
"$PROVDB" --data .demo-data chain deploy --rpc "http://127.0.0.1:$PORT"
"$PROVDB" --data .demo-data chain sync
"$PROVDB" --data .demo-data chain status
echo "== 13. The top contributor claims its share on chain (the contract pays it)"
TOP="$("$PROVDB" --data .demo-data audit --json | python3 -c 'import json, sys; print(next(a["account"] for a in json.load(sys.stdin)["accounts"] if "contributor" in a["roles"]))')"
"$PROVDB" --data .demo-data chain claim "$TOP"
echo
echo "Try: $PROVDB --data .demo-data ask cranfield \"What is a shock wave?\" --fee 1000"
echo "     $PROVDB --data .demo-data sql \"SELECT contributor, sum(amount_wei) FROM attributions GROUP BY 1 ORDER BY 2 DESC\""
