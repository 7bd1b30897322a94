//! `provdb serve`: flags to the HTTP server's configuration.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::cli::options::ServingModelArgs;
use crate::commands::chain_key::FacilitatorKeyArgs;
use crate::http::{ServeConfig, ServeLimits, X402Config};
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
    /// Most bytes one uploaded row may decode to (a JSONL line; a CSV or Parquet row as JSON).
    #[arg(long, default_value_t = ServeLimits::default().max_record_bytes)]
    max_record_bytes: usize,
    /// Most bytes one upload's rows may decode to, in MiB; an upload over it gets 413.
    #[arg(long, default_value_t = ServeLimits::default().max_upload_decoded_bytes >> 20)]
    max_upload_decoded_mb: u64,
    /// Most rows of one upload; an upload over it gets 413.
    #[arg(long, default_value_t = ServeLimits::default().max_upload_rows)]
    max_upload_rows: u64,
    /// SQL queries running at once.
    #[arg(long, default_value_t = ServeLimits::default().sql_slots)]
    sql_slots: usize,
    /// SQL queries waiting for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = ServeLimits::default().sql_queue)]
    sql_queue: usize,
    /// Seconds one SQL query may run.
    #[arg(long, default_value_t = ServeLimits::default().sql_timeout.as_secs())]
    sql_timeout_s: u64,
    /// Memory one SQL query may hold, in MiB (its operators and its result).
    #[arg(long, default_value_t = ServeLimits::default().sql_memory_bytes >> 20)]
    sql_memory_mb: usize,
    /// Largest SQL result, in MiB; a larger one is refused (add LIMIT or fewer columns).
    #[arg(long, default_value_t = ServeLimits::default().sql_max_result_bytes >> 20)]
    sql_max_result_mb: usize,
    /// Searches and embedding requests running at once.
    #[arg(long, default_value_t = ServeLimits::default().search_slots)]
    search_slots: usize,
    /// Searches and embedding requests waiting for a slot; more get 429 with Retry-After.
    #[arg(long, default_value_t = ServeLimits::default().search_queue)]
    search_queue: usize,
    /// Seconds a SQL query, search or embedding request waits for a slot before 429.
    #[arg(long, default_value_t = ServeLimits::default().queue_wait.as_secs())]
    queue_wait_s: u64,
    /// The largest fee one cited answer may carry, in wei; an answer priced above it (at its
    /// max_tokens bound) gets 402 naming this limit, before any work.
    #[arg(long, default_value_t = provdb::DEFAULT_MAX_FEE_WEI, value_name = "WEI",
          value_parser = crate::commands::ask::parse_wei)]
    max_fee_wei: u128,
    #[command(flatten)]
    x402: X402Args,
}

/// x402 payments (`--x402`).
#[derive(Debug, Args)]
struct X402Args {
    /// Take x402 payments: a cited answer asked without an API key (or with a short balance)
    /// gets 402 with what to pay in the distributor's EIP-3009 token (`provdb chain deploy
    /// --token`), and is answered once the signed payment is settled on chain as a deposit.
    #[arg(long)]
    x402: bool,
    #[command(flatten)]
    key: FacilitatorKeyArgs,
    /// Blocks a settlement must be deep before the answer (1: mined).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    x402_confirmations: u64,
    /// Seconds a client's payment authorization is valid for (x402's maxTimeoutSeconds).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..))]
    x402_timeout_s: u64,
    /// The JSON-RPC endpoint x402 settles through (default: the one recorded at deploy).
    #[arg(long = "x402-rpc", env = "PROVDB_RPC", value_name = "URL")]
    rpc: Option<String>,
    /// An outside x402 facilitator (its /verify and /settle) to settle payments instead of
    /// provdb itself (off by default). Its settlements reach the distributor as plain
    /// transfers, which provdb checks on chain and credits with the x402 key, which must then
    /// be the distributor's operator.
    #[arg(
        long = "x402-facilitator",
        env = "PROVDB_X402_FACILITATOR",
        value_name = "URL"
    )]
    facilitator: Option<String>,
}

impl X402Args {
    fn config(&self, data: &Path) -> anyhow::Result<Option<X402Config>> {
        if !self.x402 {
            return Ok(None);
        }
        Ok(Some(X402Config {
            data_dir: data.to_path_buf(),
            key: self.key.load()?,
            rpc_url: self.rpc.clone(),
            confirmations: self.x402_confirmations,
            max_timeout_seconds: self.x402_timeout_s,
            facilitator: self.facilitator.clone(),
        }))
    }
}

pub(crate) fn run(data: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let sizes = [
        args.max_body_mb as u64,
        args.max_upload_mb,
        args.timeout_s,
        args.max_record_bytes as u64,
        args.max_upload_decoded_mb,
        args.max_upload_rows,
        args.sql_timeout_s,
        args.sql_memory_mb as u64,
        args.sql_max_result_mb as u64,
    ];
    if sizes.contains(&0) {
        return Err(UserError(
            "--max-body-mb, --max-upload-mb, --timeout-s, --max-record-bytes, \
             --max-upload-decoded-mb, --max-upload-rows, --sql-timeout-s, --sql-memory-mb and \
             --sql-max-result-mb must be positive"
                .into(),
        )
        .into());
    }
    let config = ServeConfig {
        addr: args.addr,
        model: args.models.generator.model,
        embedder: args.models.embedder,
        adapter_cache_bytes: args.models.adapter_cache_bytes,
        max_fee_wei: args.max_fee_wei,
        x402: args.x402.config(data)?,
        limits: ServeLimits {
            max_body_bytes: args.max_body_mb << 20,
            max_upload_bytes: args.max_upload_mb << 20,
            rate_per_second: args.rate,
            rate_burst: args.burst,
            generation_slots: args.generation_slots,
            generation_queue: args.generation_queue,
            request_timeout: Duration::from_secs(args.timeout_s),
            max_record_bytes: args.max_record_bytes,
            max_upload_decoded_bytes: args.max_upload_decoded_mb.saturating_mul(1 << 20),
            max_upload_rows: args.max_upload_rows,
            sql_slots: args.sql_slots,
            sql_queue: args.sql_queue,
            sql_timeout: Duration::from_secs(args.sql_timeout_s),
            sql_memory_bytes: args.sql_memory_mb.saturating_mul(1 << 20),
            sql_max_result_bytes: args.sql_max_result_mb.saturating_mul(1 << 20),
            search_slots: args.search_slots,
            search_queue: args.search_queue,
            queue_wait: Duration::from_secs(args.queue_wait_s),
        },
    };
    crate::http::run(data, config)
}
