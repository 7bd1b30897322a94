//! The arguments of `provdb serve` and `provdb key`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `provdb serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub(crate) addr: SocketAddr,
    /// Generator model (GGUF file or safetensors folder); default: SmolLM2 when fetched.
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Embedder model folder; default: all-MiniLM-L6-v2 when fetched.
    #[arg(long)]
    pub(crate) embedder: Option<PathBuf>,
    /// Bytes of LoRA adapters kept in memory.
    #[arg(long, default_value_t = provdb::DEFAULT_ADAPTER_CACHE_BYTES)]
    pub(crate) adapter_cache_bytes: usize,
    /// Largest request body except uploads, in MiB.
    #[arg(long, default_value_t = 1)]
    pub(crate) max_body_mb: usize,
    /// Largest upload, in MiB.
    #[arg(long, default_value_t = 64)]
    pub(crate) max_upload_mb: u64,
    /// Requests per second per API key.
    #[arg(long, default_value_t = 50)]
    pub(crate) rate: u32,
    /// Requests a key may send at once above its rate.
    #[arg(long, default_value_t = 100)]
    pub(crate) burst: u32,
    /// Generations running at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) generation_slots: usize,
    /// Generations waiting for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = 16)]
    pub(crate) generation_queue: usize,
    /// Seconds until a response must start.
    #[arg(long, default_value_t = 300)]
    pub(crate) timeout_s: u64,
}

/// `provdb key`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Make an API key for an address; it is printed once and stored hashed.
    Create {
        /// The address the key acts as.
        #[arg(long)]
        address: String,
        /// reader, contributor, curator or admin.
        #[arg(long, default_value = "reader")]
        role: String,
        /// A note for people.
        #[arg(long, default_value = "")]
        label: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (ids, addresses, roles; never secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id.
    Revoke {
        /// The key id (16 hex digits, the part after `pdb_`).
        id: String,
    },
}

/// `provdb train`.
#[derive(Debug, Subcommand)]
pub(crate) enum TrainCommand {
    /// Fine-tune a LoRA adapter on a Datanet's records, in the foreground with a progress bar.
    Create(Box<TrainCreateArgs>),
    /// List fine-tuning jobs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a job: status, evaluation, samples.
    Show {
        /// The job id (`ftjob-…`).
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A job's events (steps, losses, status changes).
    Events {
        /// The job id.
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resume a cancelled or failed job from its last checkpoint, in the foreground.
    Resume {
        /// The job id.
        job: String,
        /// Generator model (GGUF or safetensors folder); default: SmolLM2.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a succeeded job's adapter to the adapter store, with its training provenance.
    Publish {
        /// The job id.
        job: String,
        /// The adapter's owner (default: the job's owner).
        #[arg(long)]
        owner: Option<String>,
        /// Generator model the adapter was trained for; default: SmolLM2.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `provdb train create`.
#[derive(Debug, Args)]
pub(crate) struct TrainCreateArgs {
    /// The Datanet to train on.
    pub(crate) datanet: String,
    /// SQL over it returning `record_id` and the format's columns (default: every live
    /// approved record).
    #[arg(long)]
    pub(crate) query: Option<String>,
    /// completion, instruction or chat.
    #[arg(long, default_value = "completion")]
    pub(crate) format: String,
    /// The text column of `completion` (default: the Datanet's text column).
    #[arg(long)]
    pub(crate) text_column: Option<String>,
    /// The instruction column of `instruction`.
    #[arg(long, default_value = "instruction")]
    pub(crate) instruction_column: String,
    /// The response column of `instruction`.
    #[arg(long, default_value = "response")]
    pub(crate) response_column: String,
    /// The messages column of `chat`.
    #[arg(long, default_value = "messages")]
    pub(crate) messages_column: String,
    /// Hyperparameters as a JSON file (the fields of TrainingConfig; flags override it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// LoRA rank.
    #[arg(long)]
    pub(crate) rank: Option<usize>,
    /// LoRA alpha.
    #[arg(long)]
    pub(crate) alpha: Option<f32>,
    /// Targeted modules, comma-separated (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj).
    #[arg(long)]
    pub(crate) targets: Option<String>,
    /// Peak learning rate.
    #[arg(long)]
    pub(crate) learning_rate: Option<f64>,
    /// Passes over the data.
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    /// Examples per batch.
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Longest example in tokens.
    #[arg(long)]
    pub(crate) max_length: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Basis points of every answer's data share paid to the training contributors.
    #[arg(long, default_value_t = provdb::factory::DEFAULT_TRAINING_SHARE_BPS)]
    pub(crate) share_bps: u32,
    /// Train as this address (it owns the job; private Datanets it may read become readable).
    #[arg(long = "as")]
    pub(crate) caller: Option<String>,
    /// Generator model (GGUF or safetensors folder); default: SmolLM2.
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
