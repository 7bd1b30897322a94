#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        (default 300)
#   FUZZ_TARGETS="sql gguf" scripts/fuzz.sh 60   (a subset)
#
# Installs the nightly toolchain and cargo-fuzz 0.13.2 when missing, builds every target into
# $HOME/.cache/provdb-fuzz-target, and runs each from a scratch corpus outside the clone
# (seeded from fuzz/corpus/<target>, fresh binary seeds and fuzz/regressions/<target>, so runs leave the repo
# clean). A crash, timeout or out-of-memory artifact is copied into fuzz/regressions/<target>/
# (replayed by `cargo test` from then on) and makes the script exit 1. At the end it prints a
# table per target (runs, seconds, corpus size, crashes) and writes it as JSON to
# $HOME/.cache/provdb/fuzz-summary.json.
#
# Sanitizer: none (`--sanitizer none`). Our code is safe Rust, so AddressSanitizer would mostly
# check what the compiler already proves, at twice the time per run on a 2-core machine; the C++
# underneath (RocksDB, zstd, lz4) is built by the cc crate without ASan instrumentation anyway.
# What the fuzzer looks for here is panics, aborts, huge allocations (-malloc_limit_mb follows
# -rss_limit_mb), hangs (-timeout) and broken invariants (the harness panics), none of which
# need ASan. Debug assertions (and with them overflow checks) stay on (`-a`).
set -euo pipefail

SECONDS_PER_TARGET="${1:-300}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/provdb-fuzz-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
SCRATCH="${FUZZ_SCRATCH:-$HOME/.cache/provdb/fuzz-scratch}"
SUMMARY="$HOME/.cache/provdb/fuzz-summary.json"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"

# Longest input per target: the seeds' size with room to grow, small enough to stay fast.
max_len() {
    case "$1" in
        sql) echo 256 ;;
        citations) echo 1024 ;;
        smart | api_bodies | ingest_jsonl | ingest_csv) echo 4096 ;;
        *) echo 16384 ;;
    esac
}

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz 0.13.2" ]; then
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

# Fresh binary seeds (Parquet, GGUF, PEFT adapters) from the code being fuzzed, so a changed
# format is fuzzed from valid inputs; written to the scratch corpus, not into the repo. Built in
# the tests' target directory, where the workspace is already compiled.
echo "fuzz.sh: writing fresh binary seeds"
(cd "$ROOT" && CARGO_TARGET_DIR="${PROVDB_TARGET_DIR:-$HOME/.cache/provdb-target}" \
    PROVDB_SEEDS_DIR="$SCRATCH/seeds" \
    cargo test --workspace --test seeds -- --ignored --quiet)

cd "$ROOT/fuzz"
TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list)}"
echo "fuzz.sh: building the targets (nightly, release, debug assertions, no sanitizer)"
cargo +nightly fuzz build -O -a --sanitizer none
BIN="$CARGO_TARGET_DIR/$TRIPLE/release"

mkdir -p "$(dirname "$SUMMARY")"
rows=()
failed=0
for target in $TARGETS; do
    corpus="$SCRATCH/corpus/$target"
    artifacts="$SCRATCH/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    rm -f "$artifacts"/*
    for seeds in "$ROOT/fuzz/corpus/$target" "$SCRATCH/seeds/$target" "$ROOT/fuzz/regressions/$target"; do
        if [ -d "$seeds" ]; then
            cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
        fi
    done
    log="$SCRATCH/$target.log"
    echo "fuzz.sh: $target for ${SECONDS_PER_TARGET}s (log: $log)"
    started=$(date +%s)
    set +e
    "$BIN/$target" "$corpus" \
        -max_total_time="$SECONDS_PER_TARGET" \
        -rss_limit_mb=2048 \
        -max_len="$(max_len "$target")" \
        -timeout=10 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    status=$?
    set -e
    seconds=$(($(date +%s) - started))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ -z "$runs" ]; then
        # A crash stops libFuzzer before its final stats; take the last status line.
        runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    corpus_files=$(find "$corpus" -type f | wc -l)
    crashes=$(find "$artifacts" -type f | wc -l)
    if [ "$crashes" -gt 0 ] || [ "$status" -ne 0 ]; then
        failed=1
        mkdir -p "$ROOT/fuzz/regressions/$target"
        cp "$artifacts"/* "$ROOT/fuzz/regressions/$target"/ 2>/dev/null || true
        echo "fuzz.sh: $target FAILED (exit $status); artifacts copied to fuzz/regressions/$target/"
        grep -A30 -m1 -E "panicked|ERROR: libFuzzer|==ERROR" "$log" || tail -30 "$log"
    fi
    rows+=("$target ${runs:-0} $seconds $corpus_files $crashes")
done

printf '\n%-16s %12s %8s %8s %8s\n' target runs seconds corpus crashes
entries=()
for row in "${rows[@]}"; do
    read -r target runs seconds corpus_files crashes <<<"$row"
    printf '%-16s %12s %8s %8s %8s\n' "$target" "$runs" "$seconds" "$corpus_files" "$crashes"
    entries+=("    {\"target\": \"$target\", \"runs\": $runs, \"seconds\": $seconds, \"corpus\": $corpus_files, \"crashes\": $crashes}")
done
{
    echo "{"
    echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
    echo "  \"seconds_per_target\": $SECONDS_PER_TARGET,"
    echo "  \"cpu\": \"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)\","
    echo "  \"cores\": $(nproc),"
    echo "  \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD)\","
    echo "  \"targets\": ["
    (IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
    echo "  ]"
    echo "}"
} >"$SUMMARY"
echo "fuzz.sh: summary in $SUMMARY"
exit "$failed"
