//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod serve;
pub(crate) use serve::{KeyCommand, ServeArgs, TrainCommand, TrainCreateArgs};

/// provdb: a database whose records know their contributors, and whose answers pay them.
#[derive(Debug, Parser)]
#[command(name = "provdb", version, about)]
pub(crate) struct Cli {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "PROVDB_DATA",
        default_value = "./provdb-data"
    )]
    pub(crate) data: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an empty database in the data directory.
    Init,
    /// Create, list and show Datanets.
    #[command(subcommand)]
    Datanet(DatanetCommand),
    /// Ingest JSONL, CSV or Parquet files into a Datanet; each file is all or nothing.
    Ingest(IngestArgs),
    /// List a Datanet's records with their provenance columns.
    Records(RecordsArgs),
    /// Change a record's status or remove it.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Search a Datanet: BM25, vectors or both fused.
    Search(SearchArgs),
    /// Show or change a Datanet's index parameters, or rebuild its index from storage.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Evaluate retrieval quality on a test collection with relevance judgments.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Convert a SMART collection (Cranfield, ADI) into signed JSONL records (demo keys).
    ConvertSmart(ConvertSmartArgs),
    /// Embed texts with the sentence embedder (384-d unit vectors for all-MiniLM-L6-v2).
    Embed(EmbedArgs),
    /// Generate text with the LLaMA-family model, streaming tokens to stdout.
    Generate(GenerateArgs),
    /// Run a SQL query over the Datanets the caller may read.
    Sql(SqlArgs),
    /// Add, list and remove LoRA adapters (PEFT folders) served over the generator.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// Answer a question from Datanets with verified citations, and record who is paid.
    Ask(AskArgs),
    /// Verify the attribution ledger or set its fee policy.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Who was paid what: totals per account, or one account's entries.
    Audit(AuditArgs),
    /// Close the open ledger entries into an epoch (Merkle root of cumulative balances), list
    /// epochs, print an account's proof.
    #[command(subcommand)]
    Epoch(EpochCommand),
    /// Deploy the contracts to an EVM chain, sync closed epochs and ingest batches to them,
    /// compare local and on-chain state, claim an account's balance.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Serve the HTTP API (REST, SQL, OpenAI-compatible chat with citations), the web UI and
    /// Prometheus metrics.
    Serve(ServeArgs),
    /// Make, list and revoke API keys for `provdb serve`.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Fine-tune LoRA adapters on Datanet records (the Model Factory): create, list, show,
    /// events, resume, publish.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Run the demo: ingest the signed Cranfield Datanet and print its stats.
    Demo(DemoArgs),
    /// Benchmarks that print ratios against a baseline measured in the same run (runs the
    /// `provdb-bench` binary beside this one; `provdb bench --help` lists them).
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
}

/// `provdb bench ...`: everything after `bench`, for `provdb-bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The benchmark and its options, passed to `provdb-bench` unchanged.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub(crate) args: Vec<std::ffi::OsString>,
}

/// Output formats of `provdb sql`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SqlFormat {
    /// An aligned text table.
    Table,
    /// A JSON array of row objects.
    Json,
    /// CSV with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// Datanet to answer from.
    pub(crate) name: String,
    /// The question.
    pub(crate) question: String,
    /// More Datanets to retrieve from.
    #[arg(long = "datanet")]
    pub(crate) more: Vec<String>,
    /// Sources to retrieve.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) k: usize,
    /// bm25, vector or hybrid retrieval.
    #[arg(long, default_value = "hybrid")]
    pub(crate) mode: String,
    /// The fee to split, in wei.
    #[arg(long, default_value = "0")]
    pub(crate) fee: String,
    /// cited (verified markers weighted by retrieval score) or loo (leave-one-out).
    #[arg(long, default_value = "cited")]
    pub(crate) attribution: String,
    /// LoRA adapter ID[:WEIGHT] (repeat to compose; see `provdb adapter list`).
    #[arg(long = "adapter")]
    pub(crate) adapters: Vec<String>,
    /// Bytes of adapters kept in memory.
    #[arg(long, default_value_t = provdb::DEFAULT_ADAPTER_CACHE_BYTES)]
    pub(crate) adapter_cache_bytes: usize,
    /// Ask as this address (needed for private Datanets).
    #[arg(long = "as")]
    pub(crate) caller: Option<String>,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 160)]
    pub(crate) max_tokens: usize,
    /// Generator model (GGUF file or safetensors folder; default: SmolLM2 from fetch-models).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2).
    #[arg(long)]
    pub(crate) embedder: Option<PathBuf>,
    /// Print JSON: answer_id, answer, citations, split (amounts as decimal strings), usage.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Recompute the hash chain and name the first broken entry (exit 1 when broken).
    Verify {
        /// Print JSON: entries, ok, head, broken.
        #[arg(long)]
        json: bool,
    },
    /// Show the fee policy; with options, change it.
    Policy(PolicyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// The policy of answers by this model (name as in answers, e.g. the GGUF file name).
    #[arg(long, conflicts_with = "for_datanet")]
    pub(crate) for_model: Option<String>,
    /// The policy of answers that read only this Datanet.
    #[arg(long)]
    pub(crate) for_datanet: Option<String>,
    /// The model owner's account.
    #[arg(long)]
    pub(crate) model_owner: Option<String>,
    /// The model owner's share, basis points.
    #[arg(long)]
    pub(crate) model_bps: Option<u16>,
    /// The protocol's account (also the treasury of Datanets without owner).
    #[arg(long)]
    pub(crate) protocol: Option<String>,
    /// The protocol's share, basis points.
    #[arg(long)]
    pub(crate) protocol_bps: Option<u16>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EpochCommand {
    /// Close the entries since the last epoch.
    Close {
        /// Print JSON: epoch, root, accounts, total_wei, first_seq, end_seq.
        #[arg(long)]
        json: bool,
    },
    /// List the closed epochs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// An account's cumulative balance and Merkle proof (OpenZeppelin StandardMerkleTree
    /// leaf `(address, uint256)`).
    Proof {
        /// The account.
        address: String,
        /// The epoch (default: the last).
        #[arg(long)]
        epoch: Option<u64>,
        /// Print JSON: epoch, account, cumulative_wei, leaf, proof, root.
        #[arg(long)]
        json: bool,
    },
}

/// Options of every chain command that talks to the node.
#[derive(Debug, Args)]
pub(crate) struct ChainRpcArgs {
    /// JSON-RPC endpoint (default: the one recorded at deploy).
    #[arg(long, env = "PROVDB_RPC")]
    pub(crate) rpc: Option<String>,
    /// Attempts per step before giving up on an unreachable or slow node.
    #[arg(long, default_value_t = 5)]
    pub(crate) attempts: u32,
    /// Seconds one attempt (a call, or a transaction until its receipt) may take.
    #[arg(long, default_value_t = 30)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Deploy ProvenanceRegistry and AttributionDistributor; their addresses go to
    /// DATA/chain.json. The key's account becomes the operator.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long, env = "PROVDB_RPC")]
        rpc: String,
        /// The operator's private key (hex).
        #[arg(long, env = "PROVDB_CHAIN_KEY", hide_env_values = true)]
        key: String,
        /// Deploy new contracts even when DATA/chain.json records some.
        #[arg(long)]
        force: bool,
        /// Print JSON: chain_id, operator, distributor, registry, deploy_block, gas_used.
        #[arg(long)]
        json: bool,
    },
    /// Post every closed epoch (funded with its new total) and anchor every ingest batch the
    /// chain does not have yet, in order. Reads the chain first: safe to rerun at any time.
    Sync {
        /// The operator's private key (hex).
        #[arg(long, env = "PROVDB_CHAIN_KEY", hide_env_values = true)]
        key: String,
        #[command(flatten)]
        rpc: ChainRpcArgs,
        /// Print JSON: epochs_posted, datanets_registered, batches_anchored, chain_last_epoch,
        /// chain_last_sequence.
        #[arg(long)]
        json: bool,
    },
    /// Local epochs and ingest batches against the chain's.
    Status {
        #[command(flatten)]
        rpc: ChainRpcArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Claim what an account is owed by the last epoch on chain (paid to that account).
    Claim {
        /// The account paid.
        address: String,
        /// The private key of the account that sends (and pays gas for) the claim.
        #[arg(long, env = "PROVDB_CLAIM_KEY", hide_env_values = true)]
        key: String,
        #[command(flatten)]
        rpc: ChainRpcArgs,
        /// Print JSON: epoch, account, cumulative_wei, paid_wei, proof, tx, gas_used.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this account's entries.
    #[arg(long)]
    pub(crate) contributor: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// The query.
    pub(crate) query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    pub(crate) format: SqlFormat,
    /// Run as this address (private Datanets it owns or holds a grant on become readable).
    #[arg(long = "as")]
    pub(crate) caller: Option<String>,
    /// Print at most this many rows (0: all).
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_rows: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// DataFusion's memory pool for this query, in MiB.
    #[arg(long, default_value_t = 512)]
    pub(crate) memory_mb: usize,
    /// Embedder model directory for `vector_search`/`hybrid_search` (default:
    /// $PROVDB_MODELS/all-minilm-l6-v2).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DatanetCommand {
    /// Create a Datanet.
    Create(DatanetCreateArgs),
    /// List Datanets.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one Datanet with its counters.
    Show {
        /// Datanet name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DatanetCreateArgs {
    /// Name: a letter, then letters, digits, `_` or `-`.
    pub(crate) name: String,
    /// The column that is chunked and indexed.
    #[arg(long, default_value = "text")]
    pub(crate) text_column: String,
    /// Default license of the records.
    #[arg(long, default_value = "unspecified")]
    pub(crate) license: String,
    /// Description.
    #[arg(long, default_value = "")]
    pub(crate) description: String,
    /// Typed schema, JSON: {"columns":[{"name":"title","type":"string","required":true},...]}.
    #[arg(long)]
    pub(crate) schema: Option<PathBuf>,
    /// Refuse records without a valid EIP-191 signature by their contributor.
    #[arg(long)]
    pub(crate) require_signatures: bool,
    /// Only the owner and grantees may read it.
    #[arg(long)]
    pub(crate) private: bool,
    /// Owner (curator) address.
    #[arg(long)]
    pub(crate) owner: Option<String>,
    /// New records start `pending` until a curator approves them.
    #[arg(long)]
    pub(crate) review: bool,
    /// Chunk size in bytes.
    #[arg(long, default_value_t = 1000)]
    pub(crate) chunk_size: u32,
    /// Bytes shared by consecutive chunks.
    #[arg(long, default_value_t = 150)]
    pub(crate) chunk_overlap: u32,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Datanet name.
    pub(crate) name: String,
    /// Input files (.jsonl, .csv, .parquet).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Contributor of rows without a `contributor` column.
    #[arg(long)]
    pub(crate) contributor: Option<String>,
    /// Store the valid rows and write the others to a rejects file.
    #[arg(long)]
    pub(crate) skip_invalid: bool,
    /// Only store; the index catches up on the next search.
    #[arg(long)]
    pub(crate) no_index: bool,
    /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2; without a model
    /// only BM25 is indexed now, vectors on the first search with one).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options shared by `search` and `eval`: how the retrievers are combined.
#[derive(Debug, Args)]
pub(crate) struct FusionArgs {
    /// Fusion of hybrid mode: weighted (min-max-normalised weighted sum) or rrf.
    #[arg(long, default_value = "weighted")]
    pub(crate) fusion: String,
    /// RRF constant k.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) rrf_k: f32,
    /// Weight of BM25 in hybrid mode (default 1).
    #[arg(long)]
    pub(crate) bm25_weight: Option<f32>,
    /// Weight of the vector retriever in hybrid mode (default 2 for weighted, 1 for rrf).
    #[arg(long)]
    pub(crate) vector_weight: Option<f32>,
    /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Datanet name.
    pub(crate) name: String,
    /// The query.
    pub(crate) text: String,
    /// Hits wanted.
    #[arg(short, long, default_value_t = 10)]
    pub(crate) k: usize,
    /// bm25, vector or hybrid.
    #[arg(long, default_value = "hybrid")]
    pub(crate) mode: String,
    /// Also return records of these statuses (default: approved only).
    #[arg(long = "status")]
    pub(crate) statuses: Vec<String>,
    /// Only return records under these licenses.
    #[arg(long = "license")]
    pub(crate) licenses: Vec<String>,
    /// Search on behalf of this address (needed for private Datanets).
    #[arg(long = "as")]
    pub(crate) reader: Option<String>,
    #[command(flatten)]
    pub(crate) fusion: FusionArgs,
    /// Print JSON: {"hits":[{"chunk_id","record_id","contributor","score","text",...}]}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Show the parameters; with options, change them (the graph is rebuilt from the stored
    /// vectors, nothing is re-embedded).
    Config(IndexConfigArgs),
    /// Delete the index files and rebuild them from storage.
    Rebuild {
        /// Datanet name.
        name: String,
        /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2).
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct IndexConfigArgs {
    /// Datanet name.
    pub(crate) name: String,
    /// HNSW neighbours per node (M).
    #[arg(long)]
    pub(crate) m: Option<usize>,
    /// HNSW candidate list while building.
    #[arg(long)]
    pub(crate) ef_construction: Option<usize>,
    /// HNSW candidate list while searching.
    #[arg(long)]
    pub(crate) ef_search: Option<usize>,
    /// Filtered vector searches selecting at most this many chunks scan them exactly.
    #[arg(long)]
    pub(crate) exact_scan_max: Option<u64>,
    /// Candidates per retriever in hybrid mode.
    #[arg(long)]
    pub(crate) fusion_depth: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// nDCG@10, recall@100 and MRR@10 of each mode on a SMART collection, loaded into a
    /// fresh Datanet in a temporary database.
    Ir(EvalIrArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvalIrArgs {
    /// Collection directory (cran.all.1400/cran.qry/cranqrel or *.ALL/*.QRY/*.REL).
    #[arg(long)]
    pub(crate) collection: PathBuf,
    #[command(flatten)]
    pub(crate) fusion: FusionArgs,
    /// Also score a grid of hybrid settings (RRF k x weights, weighted sums), fused from one
    /// BM25 and one vector list per query.
    #[arg(long)]
    pub(crate) sweep: bool,
    /// Print JSON: {"modes":{"bm25":{"ndcg@10":..,"recall@100":..,"mrr@10":..},...}}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RecordsArgs {
    /// Datanet name.
    pub(crate) name: String,
    /// At most this many records.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Set the curation status: pending, approved, rejected or slashed.
    Status {
        /// Record id (0x...).
        id: String,
        /// New status.
        status: String,
    },
    /// Remove a record: a tombstone version supersedes it, history stays.
    Remove {
        /// Record id (0x...).
        id: String,
        /// Who removes it.
        #[arg(long)]
        by: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ConvertSmartArgs {
    /// Collection directory (cran.all.1400 or *.ALL).
    pub(crate) collection: PathBuf,
    /// Output JSONL file.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    /// Texts to embed.
    #[arg(required = true)]
    pub(crate) texts: Vec<String>,
    /// Model directory (default: $PROVDB_MODELS/all-minilm-l6-v2, filled by scripts/fetch-models.sh).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Print JSON: {"embeddings": [[...], ...]}.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The prompt (sent as one user turn of the model's chat template unless --raw).
    pub(crate) prompt: String,
    /// Most new tokens.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f64,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) top_p: f64,
    /// Sampler seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Continue the prompt as plain text instead of a chat turn.
    #[arg(long)]
    pub(crate) raw: bool,
    /// LoRA adapter ID[:WEIGHT] from the data directory's store (repeat to compose).
    #[arg(long = "adapter")]
    pub(crate) adapters: Vec<String>,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdapterCommand {
    /// Add a PEFT LoRA folder, or a folder of them, checked against the base model.
    Add {
        /// The folder.
        path: PathBuf,
        /// The owner's address.
        #[arg(long)]
        owner: Option<String>,
        /// Base model (GGUF file or safetensors folder; default: SmolLM2 from fetch-models).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the stored adapters.
    List {
        /// Print JSON: an array of adapters.
        #[arg(long)]
        json: bool,
    },
    /// Remove an adapter (an id or a unique prefix).
    Remove {
        /// The adapter.
        id: String,
    },
    /// Write PEFT folders with random weights for a base model (tests, benchmarks, demos).
    Random {
        /// Folder to write them in (`adapter-0000`, `adapter-0001`, ...).
        out: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Rank.
        #[arg(long, default_value_t = 16)]
        rank: usize,
        /// Target modules, comma-separated PEFT names (default: every linear layer).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        /// Store bf16 instead of f32.
        #[arg(long)]
        bf16: bool,
        /// First seed (adapter i uses seed + i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Base model whose shapes to use (default: SmolLM2 from fetch-models).
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The collection to load.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// The question the demo asks.
    #[arg(
        long,
        default_value = "What is the effect of a propeller slipstream on the lift of a wing?"
    )]
    pub(crate) question: String,
    /// Only the first N documents (a quicker demo).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}
