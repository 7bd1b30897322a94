//! `provdb serve`: flags to the HTTP server's configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::cli::options::ServingModelArgs;
use crate::http::{ServeConfig, ServeLimits};
use crate::output::UserError;

/// `provdb serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    // Without a generator model (none named and the default absent), chat is off.
    #[command(flatten)]
    models: ServingModelArgs,
    /// Largest request body except uploads, in MiB.
    #[arg(long, default_value_t = 1)]
    max_body_mb: usize,
    /// Largest upload, in MiB.
    #[arg(long, default_value_t = 64)]
    max_upload_mb: u64,
    /// Requests per second per API key.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Requests a key may send at once above its rate.
    #[arg(long, default_value_t = 100)]
    burst: u32,
    /// Generations running at once.
    #[arg(long, default_value_t = 4)]
    generation_slots: usize,
    /// Generations waiting for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = 16)]
    generation_queue: usize,
    /// Seconds until a response must start.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

pub(crate) fn run(data: &Path, args: ServeArgs) -> anyhow::Result<()> {
    if args.max_body_mb == 0 || args.max_upload_mb == 0 || args.timeout_s == 0 {
        return Err(UserError(
            "--max-body-mb, --max-upload-mb and --timeout-s must be positive".into(),
        )
        .into());
    }
    let config = ServeConfig {
        addr: args.addr,
        model: args.models.generator.model,
        embedder: args.models.embedder,
        adapter_cache_bytes: args.models.adapter_cache_bytes,
        limits: ServeLimits {
            max_body_bytes: args.max_body_mb << 20,
            max_upload_bytes: args.max_upload_mb << 20,
            rate_per_second: args.rate,
            rate_burst: args.burst,
            generation_slots: args.generation_slots,
            generation_queue: args.generation_queue,
            request_timeout: Duration::from_secs(args.timeout_s),
        },
    };
    crate::http::run(data, config)
}
