#!/usr/bin/env bash
# The hardening run: the crash matrix with 50 SIGKILL trials per scenario, the fault-injection
# tests, every fuzz target for a bounded time (scripts/fuzz.sh), and the dependency audit
# (scripts/audit.sh). Figures land in ~/.cache/provdb/harden/ (crash/<scenario>.json,
# faults.log, audit.log) and ~/.cache/provdb/fuzz-summary.json; docs/GUARANTEES.md quotes
# them. Usage: scripts/harden.sh [FUZZ_SECONDS_PER_TARGET] (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install-deps.sh
bash scripts/fetch-models.sh >/dev/null
fuzz_seconds="${1:-300}"
report="$HOME/.cache/provdb/harden"
rm -rf "$report"
mkdir -p "$report"

echo "== crash matrix (${PROVDB_CRASH_TRIALS:-50} trials per scenario)" >&2
# ledger_appends drives `provdb bench answer`, which runs the provdb-bench binary beside provdb.
# --all-targets: the feature set the tests build with (building one binary alone resolves
# dependency features without the dev-dependencies and rebuilds tantivy, alloy and more).
cargo build --workspace --all-targets
PROVDB_CRASH_TRIALS="${PROVDB_CRASH_TRIALS:-50}" PROVDB_CRASH_REPORT="$report/crash" \
  cargo test --workspace --test crash_matrix -- --test-threads=1 --nocapture 2>&1 |
  tee "$report/crash.log" | grep -E "^(test |crash matrix:)" >&2

echo "== fault injection" >&2
cargo test --workspace --test binary faults -- --test-threads=1 2>&1 |
  tee "$report/faults.log" | grep -E "^test " >&2

echo "== fuzzing (${fuzz_seconds} s per target)" >&2
bash scripts/fuzz.sh "$fuzz_seconds"

echo "== dependency audit" >&2
bash scripts/audit.sh 2>&1 | tee "$report/audit.log" >&2
echo "harden: all passed; figures in $report and ~/.cache/provdb/fuzz-summary.json" >&2
