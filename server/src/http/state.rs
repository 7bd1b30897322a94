//! What every route shares: the database (with its embedder and answering model), the batching
//! generator for plain chat, the limits, the metrics and x402.

use std::sync::Arc;
use std::time::Duration;

use provdb::Db;
use provdb::factory::JobRunner;
use provdb::inference::llama::Generator;

use crate::http::limits::{Gate, KeyRateLimit};
use crate::http::metrics::Metrics;
use crate::http::x402::X402;

/// Limits of `provdb serve` (its flags; [`Default`] gives the flags' defaults).
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// Largest request body except uploads.
    pub max_body_bytes: usize,
    /// Largest upload.
    pub max_upload_bytes: u64,
    /// Requests per second per key.
    pub rate_per_second: u32,
    /// Requests a key may send at once above its rate.
    pub rate_burst: u32,
    /// Generations running at once.
    pub generation_slots: usize,
    /// Generations waiting for a slot.
    pub generation_queue: usize,
    /// Time until a response starts.
    pub request_timeout: Duration,
    /// Most bytes one uploaded row may decode to.
    pub max_record_bytes: usize,
    /// Most bytes one upload's rows may decode to.
    pub max_upload_decoded_bytes: u64,
    /// Most rows of one upload.
    pub max_upload_rows: u64,
    /// SQL queries running at once.
    pub sql_slots: usize,
    /// SQL queries waiting for a slot (each at most `queue_wait`).
    pub sql_queue: usize,
    /// Time one SQL query may run.
    pub sql_timeout: Duration,
    /// Memory one SQL query may hold (its operators and its collected result).
    pub sql_memory_bytes: usize,
    /// Bytes of one SQL result.
    pub sql_max_result_bytes: usize,
    /// Searches and embedding requests running at once.
    pub search_slots: usize,
    /// Searches and embedding requests waiting for a slot (each at most `queue_wait`).
    pub search_queue: usize,
    /// Longest wait of a SQL query, search or embedding request for a slot.
    pub queue_wait: Duration,
}

impl Default for ServeLimits {
    /// The defaults of `provdb serve`'s flags (`cli/serve.rs`).
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_upload_bytes: 64 << 20,
            rate_per_second: 50,
            rate_burst: 100,
            generation_slots: 4,
            generation_queue: 16,
            request_timeout: Duration::from_secs(300),
            max_record_bytes: 8 << 20,
            max_upload_decoded_bytes: 512 << 20,
            max_upload_rows: 1_000_000,
            sql_slots: 4,
            sql_queue: 16,
            sql_timeout: Duration::from_secs(60),
            sql_memory_bytes: 512 << 20,
            sql_max_result_bytes: 64 << 20,
            search_slots: 4,
            search_queue: 32,
            queue_wait: Duration::from_secs(30),
        }
    }
}

/// The state of a running server.
pub(crate) struct AppState {
    /// The database, with the embedder and generator loaded (when their models are there).
    pub(crate) db: Db,
    /// Plain chat (no retrieval) is batched here, across requests and adapters.
    pub(crate) generator: Option<Arc<Generator>>,
    /// The generator's name (`model` in OpenAI requests).
    pub(crate) model_name: Option<String>,
    /// Fine-tuning jobs run here (when a generator is loaded).
    pub(crate) jobs: Option<JobRunner>,
    pub(crate) limits: ServeLimits,
    pub(crate) gate: Gate,
    /// SQL queries (each on a blocking thread of its own).
    pub(crate) sql_gate: Gate,
    /// Searches and embedding requests (the index and the embedder model).
    pub(crate) search_gate: Gate,
    pub(crate) rate: KeyRateLimit,
    pub(crate) metrics: Metrics,
    /// x402 payments, when `provdb serve --x402` takes them.
    pub(crate) x402: Option<X402>,
}

/// The shared handle routes receive.
pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub(crate) fn new(
        db: Db,
        generator: Option<Arc<Generator>>,
        model_name: Option<String>,
        jobs: Option<JobRunner>,
        limits: ServeLimits,
    ) -> Self {
        Self {
            db,
            generator,
            model_name,
            jobs,
            gate: Gate::generation(limits.generation_slots, limits.generation_queue),
            sql_gate: Gate::new(
                "SQL",
                "--sql-slots, --sql-queue",
                limits.sql_slots,
                limits.sql_queue,
            )
            .max_wait(limits.queue_wait),
            search_gate: Gate::new(
                "search and embedding",
                "--search-slots, --search-queue",
                limits.search_slots,
                limits.search_queue,
            )
            .max_wait(limits.queue_wait),
            rate: KeyRateLimit::new(limits.rate_per_second, limits.rate_burst),
            metrics: Metrics::new(),
            x402: None,
            limits,
        }
    }
}
