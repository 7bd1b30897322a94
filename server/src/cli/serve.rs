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
