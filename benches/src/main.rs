//! `provdb-bench`: provdb's whole-system benchmarks (also run as `provdb bench ...`, which
//! executes this binary). Each measures provdb and the peer a user would pick instead in the
//! same run, on the same input, and prints the ratio, so results compare across machines and
//! loads. One module per benchmark, each owning its options (`Args`) and its `run`; shared
//! figures of the process (CPU time, resident memory, load average) are in `process`, the
//! PyTorch anchor of the training benchmarks in `pytorch`.
//!
//! Exit codes, as the `provdb` binary's: 0 success, 1 user error (message on stderr), 2
//! internal or IO error, or a failed check.

mod adapters;
mod answer;
mod chain;
mod embed;
mod generate;
mod influence;
mod ingest;
mod output;
mod process;
mod pytorch;
mod search;
mod sql;
mod sql_data;
mod train;
mod train_check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// provdb's benchmarks: each prints ratios against a baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "provdb-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// Ingest throughput against raw RocksDB WriteBatch throughput for the same bytes.
    Ingest(ingest::Args),
    /// Embedder throughput (128-token chunks, batch 32) against a large f32 matmul.
    Embed(embed::Args),
    /// Generator prefill and decode tokens/s against llama.cpp on the same GGUF.
    Generate(generate::Args),
    /// Search over 100,000 chunks: HNSW and filtered search against exact scans, BM25 QPS,
    /// hybrid latency, index build time.
    Search(search::Args),
    /// Ledger append rate against raw RocksDB, epoch close time, and answer latency split
    /// into retrieval, prefill, decode and attribution (cited and leave-one-out).
    Answer(answer::Args),
    /// SQL over a million synthetic records (a GROUP BY over all, a selective filter) against
    /// DuckDB over the same rows in Parquet.
    Sql(sql::Args),
    /// Gas per epoch commit and per claim on a fresh anvil, against Uniswap's
    /// MerkleDistributor (78,000-92,000 gas per claim).
    Chain(chain::Args),
    /// Multi-LoRA serving: batch-8 decode on 8 distinct adapters against the base, cold
    /// adapter load, 1,000 adapters round-robin through a 64-adapter cache; llama.cpp anchor.
    Adapters(adapters::Args),
    /// LoRA training tokens/s (rank 8 on SmolLM2-135M, sequences of 256) against PyTorch +
    /// PEFT on the same GGUF; `--peft-check` loads a provdb-trained adapter in PEFT instead.
    Train(train::Args),
    /// Training-data influence on SmolLM2: its linear datamodeling score over retrainings on
    /// random halves against the token-count split, what recording gradients adds to
    /// training, and an answer's influence against its generation.
    Influence(influence::Args),
}

fn main() -> ExitCode {
    provdb_server::run_command_line(|cli: Cli| run(cli.benchmark))
}

fn run(benchmark: Benchmark) -> anyhow::Result<()> {
    match benchmark {
        Benchmark::Ingest(args) => ingest::run(args),
        Benchmark::Embed(args) => embed::run(args),
        Benchmark::Generate(args) => generate::run(args),
        Benchmark::Search(args) => search::run(args),
        Benchmark::Answer(args) => answer::run(args),
        Benchmark::Sql(args) => sql::run(args),
        Benchmark::Chain(args) => chain::run(args),
        Benchmark::Adapters(args) => adapters::run(args),
        Benchmark::Train(args) if args.peft_check => train_check::run(args),
        Benchmark::Train(args) => train::run(args),
        Benchmark::Influence(args) => influence::run(args),
    }
}
