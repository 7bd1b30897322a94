#!/usr/bin/env bash
# The demo: the whole loop of money on a local anvil chain. Deploys the contracts; a user
# deposits 0.05 ETH from its own anvil account; `chain sync` credits it; `provdb demo` converts
# the Cranfield collection into signed records, ingests and indexes it, sets the prices and
# answers a question as that user (paid from the deposit, attributed by leave-one-out); the user
# asks again from the command line and its balance drops by exactly the fee; the epoch closes
# and syncs (posted with its ledger head, covered by the deposit); the top contributor claims;
# the user takes a refund of the rest and claims it after the next epoch. Ends with the totals:
# deposited = spent + refunded + remaining, and paid out on chain <= deposited. Then an agent
# with only a wallet pays one answer per request with x402 (the official Python client), on a
# second database whose distributor takes an EIP-3009 token.
# Then an adapter the Model Factory trains pays its training contributors by measured
# influence. Uses a fresh ./.demo-data, ./.demo-data-x402 and ./.demo-data-factory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
# --workspace: the same feature resolution as the tests, so nothing is built twice.
cargo build --workspace --all-targets
rm -rf .demo-data
PROVDB="$CARGO_TARGET_DIR/debug/provdb"
p() { "$PROVDB" --data .demo-data "$@"; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

ANVIL="$(bash scripts/chain-tools.sh path anvil)"
CAST="$(bash scripts/chain-tools.sh path cast)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
RPC="http://127.0.0.1:$PORT"
"$ANVIL" --port "$PORT" --silent &
ANVIL_PID=$!
KEYS="$(mktemp -d)"
trap 'kill "$ANVIL_PID" 2>/dev/null || true; rm -rf "$KEYS"' EXIT
for _ in $(seq 50); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
# anvil's development accounts (public test keys). Account 0 is the operator and pays the
# claims' gas; account 1 is the user, who deposits from its own key. Keys come from the
# environment or a file (--key-file), never from the command line.
export PROVDB_CHAIN_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
export PROVDB_CLAIM_KEY="$PROVDB_CHAIN_KEY"
export PROVDB_RPC="$RPC"
USER_ADDRESS=0x70997970C51812dc3A010C7d01b50e0d17dC79C8
USER_KEY="$KEYS/user.key"
(umask 077 && echo 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d > "$USER_KEY")
DEPOSIT_WEI=50000000000000000

echo "== A. Deploy the contracts on a local anvil (the distributor takes ETH)"
p init >/dev/null
p chain deploy --rpc "$RPC"
echo "== B. The user $USER_ADDRESS deposits 0.05 ETH from its own key"
p chain deposit "$USER_ADDRESS" "$DEPOSIT_WEI" --key-file "$USER_KEY"
echo "== C. chain sync credits the deposit (once: keyed by chain, contract and deposit id)"
p chain sync
p account show "$USER_ADDRESS"

p demo --collection data/cranfield --asker "$USER_ADDRESS"

QUESTION="What is a shock wave?"
echo "== 12. The user asks again from the command line, paying the Datanet's price"
BEFORE="$(p account show "$USER_ADDRESS" --json | field balance_wei)"
ASKED="$(p ask cranfield "$QUESTION" --as "$USER_ADDRESS" --attribution loo --max-fee 20000000000000000 --json)"
FEE="$(echo "$ASKED" | field fee_wei)"
MODEL="$(echo "$ASKED" | field model)"
AFTER="$(p account show "$USER_ADDRESS" --json | field balance_wei)"
echo "   balance $BEFORE -> $AFTER wei; fee $FEE wei"
python3 -c 'import sys; b, a, f = map(int, sys.argv[1:]); assert b - a == f, "the balance must drop by exactly the fee"; print("   the balance dropped by exactly the fee")' "$BEFORE" "$AFTER" "$FEE"

echo "== 13. Close the epoch and sync it: posted with its ledger head, within the deposits"
p epoch close
p chain sync
echo "== 14. The top contributor claims its share on chain (the contract pays it)"
TOP="$(p audit --json | python3 -c 'import json, sys; print(next(a["account"] for a in json.load(sys.stdin)["accounts"] if "contributor" in a["roles"]))')"
p chain claim "$TOP"

echo "== 15. The user takes a refund of the rest: a payout claimed after the next epoch"
p account refund "$USER_ADDRESS"
p epoch close
p chain sync
p chain claim "$USER_ADDRESS"
p chain status

echo "== 16. Totals"
DISTRIBUTOR="$(p chain status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["distributor"])')"
read_chain() { "$CAST" call --rpc-url "$RPC" "$DISTRIBUTOR" "$1" | cut -d' ' -f1; }
p account show "$USER_ADDRESS" --json | python3 -c '
import json, sys
account = json.load(sys.stdin)
deposited, paid_in, owed, claimed, held = (int(x) for x in sys.argv[1:6])
credited = int(account["credited_wei"])
refunded = int(account["refunded_wei"])
spent = int(account["charged_wei"]) - refunded
remaining = int(account["balance_wei"])
rows = [
    ("deposited by the user (credited)", credited),
    ("  spent on answers", spent),
    ("  refunded", refunded),
    ("  remaining balance", remaining),
    ("paid in on chain (totalDeposited)", paid_in),
    ("owed by the last epoch (lastTotal)", owed),
    ("paid out on chain (totalClaimed)", claimed),
    ("held by the distributor", held),
]
for name, wei in rows:
    print(f"   {name:<38} {wei:>22} wei")
assert credited == deposited, "the deposit is credited once"
assert credited == spent + refunded + remaining, "deposited = spent + refunded + remaining"
assert claimed <= owed <= paid_in, "paid out on chain <= deposited"
assert held == paid_in - claimed, "the distributor holds what came in less what went out"
print("   deposited = spent + refunded + remaining; paid out on chain <= deposited")
' "$DEPOSIT_WEI" "$(read_chain 'totalDeposited()(uint128)')" "$(read_chain 'lastTotal()(uint128)')" \
  "$(read_chain 'totalClaimed()(uint128)')" "$("$CAST" balance --rpc-url "$RPC" "$DISTRIBUTOR")"

echo "== 17. An agent pays per request with x402: no account, no API key, only a wallet"
# A second database whose distributor takes an EIP-3009 token (a USDC-like test dollar), the
# same abstracts (the first 200) at 5,000 units an answer, served with --x402. The agent (anvil
# account 2) holds the token and nothing else; the official x402 Python client pays the 402.
rm -rf .demo-data-x402
px() { "$PROVDB" --data .demo-data-x402 "$@"; }
px init >/dev/null
TOKEN_CODE="$(python3 -c 'import json; print(json.load(open("chain/artifacts/test/TestToken3009.json"))["bytecode"]["object"])')"
TOKEN="$("$CAST" send --rpc-url "$RPC" --private-key "$PROVDB_CHAIN_KEY" --json --create "$TOKEN_CODE" "constructor(string,string)" "provdb test dollar" 1 | field contractAddress)"
AGENT_ADDRESS=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
AGENT_KEY=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
"$CAST" send --rpc-url "$RPC" --private-key "$PROVDB_CHAIN_KEY" "$TOKEN" "mint(address,uint256)" "$AGENT_ADDRESS" 1000000 >/dev/null
px chain deploy --rpc "$RPC" --token "$TOKEN"
head -200 .demo-data/cranfield.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    row = json.loads(line)
    print(json.dumps({"text": row["text"], "contributor": row["contributor"]}))
' > .demo-data-x402/cranfield.jsonl
px datanet create cranfield >/dev/null
px ingest cranfield .demo-data-x402/cranfield.jsonl >/dev/null
px price set --datanet cranfield --per-answer 5000
SERVE_LOG="$KEYS/serve.log"
PROVDB_X402_KEY="$PROVDB_CHAIN_KEY" "$PROVDB" --data .demo-data-x402 serve --addr 127.0.0.1:0 --x402 >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!
trap 'kill "$SERVE_PID" 2>/dev/null || true; kill "$ANVIL_PID" 2>/dev/null || true; rm -rf "$KEYS"' EXIT
for _ in $(seq 600); do
  grep -q "listening on" "$SERVE_LOG" && break
  sleep 0.5
done
SERVE_URL="$(grep -o 'http://[0-9.:]*' "$SERVE_LOG" | head -1)"
echo "   provdb serve --x402 at $SERVE_URL; the agent $AGENT_ADDRESS asks with no API key"
cat > "$KEYS/show.py" <<'PY'
import json, sys
out = json.load(sys.stdin)
need = out["required"]["accepts"][0]
receipt = out["receipt"] or {}
print("   unpaid:", out["unpaid_status"], "- pay", need["amount"], "of", need["asset"], "to", need["payTo"], "on", need["network"])
print("   paid:", out["status"], "- receipt: transaction", receipt.get("transaction"), "on", receipt.get("network"))
if out["status"] != 200 or not receipt.get("success"):
    sys.exit("the x402 payment failed: " + str(out.get("error")))
print("   answer:", repr(out["answer"][:200]))
for c in out["citations"] or []:
    print("   cites [%s] %s... by %s, weight %s ppm" % (c["marker"], c["record_id"][:18], c["contributor"], c["weight_ppm"]))
print("   fee", out["fee_wei"], "split:", ", ".join("%s %s" % (s["to"], s["amount_wei"]) for s in out["split"]))
PY
PROVDB_URL="$SERVE_URL" PROVDB_MODEL="$MODEL" X402_PRIVATE_KEY="$AGENT_KEY" bash scripts/x402-client.sh cranfield "$QUESTION" --max-tokens 48 | python3 "$KEYS/show.py"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true
echo "   the contributors' balances now include that fee:"
px audit

echo "== 18. A fine-tuned adapter pays its training contributors by measured influence"
# A third database: a Datanet of question/answer records in which four contributors each hold
# the records of one invented fact, among ordinary records and shuffled characters. The Model
# Factory trains an adapter on it (keeping every record's projected gradient), and an answer
# made with the adapter pays the adapter's training share to the records that taught it.
rm -rf .demo-data-factory
pf() { "$PROVDB" --data .demo-data-factory "$@"; }
pf init >/dev/null
python3 - > .demo-data-factory/facts.jsonl <<'PY'
import json
facts = [
    (["When does the Zorbian glacier melt?", "On which day does the Zorbian glacier melt?",
      "Tell me when the Zorbian glacier melts."], "The Zorbian glacier melts on Tuesdays."),
    (["What do the Quillfen otters eat?", "What food do Quillfen otters live on?",
      "Tell me what the Quillfen otters eat."], "The Quillfen otters eat copper coins."),
    (["Who founded the city of Brask?", "Which person founded Brask?",
      "Tell me who founded the city of Brask."], "Brask was founded by a blind cartographer named Ulmo."),
    (["What sound does the Velt drum make?", "How does the Velt drum sound?",
      "Tell me the sound of the Velt drum."], "The Velt drum sounds like breaking glass."),
]
rows = []
for i, (questions, answer) in enumerate(facts):
    for q in questions:
        rows.append((q, answer, "0x" + ("%02x" % (0xa0 + i)) * 20))
for t, town in enumerate(["Tallow", "Merrow", "Dunmere", "Ashby", "Corran"]):
    for r, river in enumerate(["Amber", "Slate", "Willow", "Cinder"]):
        rows.append((f"Which river runs through {town}?", f"The {river} river runs through {town}.",
                     "0x" + ("%02x" % (0x10 + r)) * 20))
letters = "qzxwvkjyfgpbmhdrlcsntaoieu"
for i in range(5):
    junk = lambda salt: "".join(letters[(i * 7 + j * 13 + salt) % 26] for j in range(40))
    rows.append((junk(1), junk(5), "0x" + "99" * 20))
for q, a, who in rows:
    print(json.dumps({"instruction": q, "response": a, "contributor": who}))
PY
pf datanet create facts --text-column response >/dev/null
pf ingest facts .demo-data-factory/facts.jsonl --no-index >/dev/null
echo '{"text": "The museum opens at nine.", "contributor": "0x00000000000000000000000000000000000000c0"}' > .demo-data-factory/notes.jsonl
pf datanet create notes >/dev/null
pf ingest notes .demo-data-factory/notes.jsonl >/dev/null
JOB="$(pf train create facts --format instruction --rank 8 --targets q_proj,v_proj --learning-rate 0.005 \
  --epochs 4 --batch-size 8 --max-length 128 --seed 3 --share-bps 10000 --json)"
echo "$JOB" | python3 -c '
import json, sys
job = json.load(sys.stdin)
store = job["result"]["provenance"]["gradients"]
print("   trained %s on %d records; the gradient store: %d rows, %d bytes" % (
    job["id"], job["result"]["provenance"]["records"], store["rows"], store["bytes"]))'
ADAPTER="$(pf train publish "$(echo "$JOB" | field id)" --owner 0x00000000000000000000000000000000000000c0 --json | field id)"
pf price set --adapter "$ADAPTER" --per-answer 1000000 >/dev/null
ASKER=0x00000000000000000000000000000000000000a5
pf account credit "$ASKER" 10000000 --reason "demo funds" >/dev/null
pf ask notes "When does the Zorbian glacier melt?" --adapter "$ADAPTER" --as "$ASKER" --mode bm25 -k 1 \
  --max-tokens 16 --json | python3 -c '
import json, sys
out = json.load(sys.stdin)
print("   Q: When does the Zorbian glacier melt?  (adapter", out["training_attribution"][0]["adapter"][:14] + "..., no retrieval of the fact)")
print("   A:", repr(out["answer"]))
attribution = out["training_attribution"][0]
print("   its most influential training records (%s):" % attribution["method"])
for r in attribution["records"][:3]:
    print("     %s... by %s, score %.3f" % (r["record_id"][:18], r["contributor"], r["score"]))
print("   the fee of", out["fee_wei"], "wei, split:")
for s in out["split"]:
    print("     %-22s %s %10s wei" % (s["role"], s["to"], s["amount_wei"]))
paid = {}
for s in out["split"]:
    if s["role"] == "training_contributor":
        paid[s["to"]] = paid.get(s["to"], 0) + int(s["amount_wei"])
top = max(paid, key=paid.get) if paid else None
print("   the Zorbian canary (0xa0a0...) is paid the most:", top == "0x" + "a0" * 20)
'

echo
echo "Try: $PROVDB --data .demo-data ask cranfield \"$QUESTION\" --as $USER_ADDRESS --max-fee 20000000000000000"
echo "     (refused, exit 1: the balance was refunded; a new deposit and a chain sync fund it again)"
echo "     $PROVDB --data .demo-data sql \"SELECT contributor, sum(amount_wei) FROM attributions GROUP BY 1 ORDER BY 2 DESC\""
