//! `provdb serve`: flags to the HTTP server's configuration.

use std::path::Path;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::http::{ServeConfig, ServeLimits};
use crate::output::UserError;

pub(crate) fn run(data: &Path, args: ServeArgs) -> anyhow::Result<()> {
    if args.max_body_mb == 0 || args.max_upload_mb == 0 || args.timeout_s == 0 {
        return Err(UserError(
            "--max-body-mb, --max-upload-mb and --timeout-s must be positive".into(),
        )
        .into());
    }
    let config = ServeConfig {
        addr: args.addr,
        model: args.model,
        embedder: args.embedder,
        adapter_cache_bytes: args.adapter_cache_bytes,
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
