//! What every route shares: the database (with its embedder and answering model), the batching
//! generator for plain chat, the limits and the metrics.

use std::sync::Arc;
use std::time::Duration;

use provdb::Db;
use provdb::factory::JobRunner;
use provdb::inference::llama::Generator;

use crate::http::limits::{GenerationGate, KeyRateLimit};
use crate::http::metrics::Metrics;

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
    pub(crate) gate: GenerationGate,
    pub(crate) rate: KeyRateLimit,
    pub(crate) metrics: Metrics,
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
            gate: GenerationGate::new(limits.generation_slots, limits.generation_queue),
            rate: KeyRateLimit::new(limits.rate_per_second, limits.rate_burst),
            metrics: Metrics::new(),
            limits,
        }
    }
}
