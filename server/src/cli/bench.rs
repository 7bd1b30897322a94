//! The arguments of `provdb bench`, as they were before the benchmarks move to their own
//! crate (another change replaces this tree with a pass-through to `provdb-bench`). Each
//! benchmark still owns its own `--json`: a subcommand's own flag takes precedence over the
//! global one.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Ingest throughput against raw RocksDB WriteBatch throughput for the same bytes.
    Ingest(BenchIngestArgs),
    /// Embedder throughput (128-token chunks, batch 32) against a large f32 matmul.
    Embed(BenchEmbedArgs),
    /// Generator prefill and decode tokens/s against llama.cpp on the same GGUF.
    Generate(BenchGenerateArgs),
    /// Search over 100,000 chunks: HNSW and filtered search against exact scans, BM25 QPS,
    /// hybrid latency, index build time.
    Search(BenchSearchArgs),
    /// Ledger append rate against raw RocksDB, epoch close time, and answer latency split
    /// into retrieval, prefill, decode and attribution (cited and leave-one-out).
    Answer(BenchAnswerArgs),
    /// SQL over a million synthetic records (a GROUP BY over all, a selective filter) against
    /// DuckDB over the same rows in Parquet.
    Sql(BenchSqlArgs),
    /// Gas per epoch commit and per claim on a fresh anvil, against Uniswap's
    /// MerkleDistributor (78,000-92,000 gas per claim).
    Chain(BenchChainArgs),
    /// Multi-LoRA serving: batch-8 decode on 8 distinct adapters against the base, cold
    /// adapter load, 1,000 adapters round-robin through a 64-adapter cache; llama.cpp anchor.
    Adapters(BenchAdaptersArgs),
    /// LoRA training tokens/s (rank 8 on SmolLM2-135M, sequences of 256) against PyTorch +
    /// PEFT on the same GGUF; `--peft-check` loads a provdb-trained adapter in PEFT instead.
    Train(BenchTrainArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BenchTrainArgs {
    /// Timed training steps on each side (after the warm-up steps).
    #[arg(long, default_value_t = 5)]
    pub(crate) steps: usize,
    /// Untimed warm-up steps on each side.
    #[arg(long, default_value_t = 1)]
    pub(crate) warmup: usize,
    /// Tokens per sequence (batch 1).
    #[arg(long, default_value_t = 256)]
    pub(crate) length: usize,
    /// LoRA rank (alpha is twice the rank, PEFT's usual 2r).
    #[arg(long, default_value_t = 8)]
    pub(crate) rank: usize,
    /// Targeted modules (comma-separated PEFT names), the same on both sides.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj"
    )]
    pub(crate) targets: Vec<String>,
    /// Threads of provdb's pool and of torch.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Threads of candle's element-wise pool (sets CANDLE_NUM_THREADS unless it is set): 1 is
    /// the fastest measured, as its spinning worker would compete with gemm's threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) candle_threads: usize,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text makes the training sequences.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Measure PyTorch even when its venv is not installed yet (installs it: ~2.5 GB).
    #[arg(long, conflicts_with = "no_anchor")]
    pub(crate) anchor: bool,
    /// Do not measure PyTorch (no ratio is printed).
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Instead of timing: train a few steps, save the PEFT folder, load it with Hugging Face
    /// PEFT and compare the adapter's effect on the logits with provdb's (exit 2 above the
    /// tolerance).
    #[arg(long, conflicts_with = "no_anchor")]
    pub(crate) peft_check: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchChainArgs {
    /// Accounts in the epoch (the claim's proof has about log2 of this many nodes).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: u64,
    /// The anvil binary (default: from scripts/chain-tools.sh, run from the repository).
    #[arg(long, env = "PROVDB_ANVIL")]
    pub(crate) anvil: Option<PathBuf>,
    /// Print JSON: epoch_commit_gas, claim_gas, ...
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchAnswerArgs {
    /// Ledger entries to append (answers of five payments).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) entries: usize,
    /// Answers per commit (one WriteBatch, one fsync).
    #[arg(long, default_value_t = 64)]
    pub(crate) group: usize,
    /// Distinct accounts paid.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: u64,
    /// Only the ledger parts (no models).
    #[arg(long)]
    pub(crate) ledger_only: bool,
    /// Cranfield abstracts to index for the answer part.
    #[arg(long, default_value_t = 300)]
    pub(crate) records: usize,
    /// Sources per answer.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) k: usize,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 64)]
    pub(crate) max_tokens: usize,
    /// The collection.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Keep the databases in this directory (default: a temporary one).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchSqlArgs {
    /// Records in the Datanet.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: usize,
    /// Rows per ingested JSONL file (one batch each).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) file_records: usize,
    /// Timed repetitions of each query after a warm-up (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Keep the database and Parquet file here and reuse them when built with the same
    /// --records (default: a temporary directory).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Do not run DuckDB (also PROVDB_BENCH_NO_BASELINE=1); no ratio is printed.
    #[arg(long)]
    pub(crate) no_baseline: bool,
    /// Another query to time on both engines (repeatable), over the table `records`.
    #[arg(long = "query")]
    pub(crate) extra_queries: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchSearchArgs {
    /// Chunks to index (Cranfield and ADI text replicated with variations).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) chunks: usize,
    /// Queries timed per measurement.
    #[arg(long, default_value_t = 200)]
    pub(crate) queries: usize,
    /// Source documents the synthetic vectors are drawn around.
    #[arg(long, default_value_t = 1482)]
    pub(crate) clusters: usize,
    /// HNSW M (default: the index default).
    #[arg(long)]
    pub(crate) m: Option<usize>,
    /// HNSW ef_construction (default: the index default).
    #[arg(long)]
    pub(crate) ef_construction: Option<usize>,
    /// Synthetic vector model: lowrank (embedding-like, 24-d latent) or clusters (hard case).
    #[arg(long, default_value = "lowrank")]
    pub(crate) vectors: String,
    /// Directory with cran.all.1400 and cran.qry.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchIngestArgs {
    /// Records to ingest (Cranfield replicated with variations).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) records: usize,
    /// Records per file (one batch each).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) batch: usize,
    /// The collection to replicate.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Times raw RocksDB and unsigned ingest are run, alternately (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Skip the signed ingest (for profiling the unsigned path).
    #[arg(long)]
    pub(crate) unsigned_only: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchEmbedArgs {
    /// Chunks to embed.
    #[arg(long, default_value_t = 256)]
    pub(crate) chunks: usize,
    /// Side of the square matrices of the matmul baseline.
    #[arg(long, default_value_t = 2048)]
    pub(crate) sgemm_size: usize,
    /// Model directory (default: $PROVDB_MODELS/all-minilm-l6-v2).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text is cut into chunks.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchAdaptersArgs {
    /// Threads (provdb's pool and llama.cpp's).
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// New tokens per request in llama.cpp's mixed run.
    #[arg(long, default_value_t = 32)]
    pub(crate) tokens: usize,
    /// Adapters in the store for the round-robin run (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub(crate) adapters_on_disk: usize,
    /// Rank of the round-robin adapters (on q_proj and v_proj, PEFT's default targets).
    #[arg(long, default_value_t = 16)]
    pub(crate) rr_rank: usize,
    /// Adapters the round-robin cache holds.
    #[arg(long, default_value_t = 64)]
    pub(crate) cache_adapters: usize,
    /// Round-robin requests.
    #[arg(long, default_value_t = 400)]
    pub(crate) requests: usize,
    /// New tokens per round-robin request.
    #[arg(long, default_value_t = 8)]
    pub(crate) rr_tokens: usize,
    /// Concurrent round-robin clients.
    #[arg(long, default_value_t = 8)]
    pub(crate) clients: usize,
    /// Where to write the adapters (default /tmp).
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Do not measure llama.cpp.
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchGenerateArgs {
    /// Thread counts to measure, for provdb and for llama.cpp (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub(crate) threads: Vec<usize>,
    /// Repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Sequences decoded together in the batched measurement.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch: usize,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text makes the prompt.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Do not measure llama.cpp (no ratio is printed).
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
