//! `provdb serve`: the HTTP API (`docs/http-api.md`), the web UI and Prometheus metrics over one
//! database.
//!
//! Owns routing, authentication, limits, and the translation of provdb's errors to statuses.
//! Invariants: every `/v1/` route authenticates before it reads anything, except that with
//! `--x402` a cited chat answer may come without a key: it is then priced as an anonymous caller
//! (public Datanets only) for its 402, and answered only as the signer of a payment settled
//! first (`x402/`); a Datanet the caller
//! may not read answers 404 exactly like an unknown one; blocking work (RocksDB, indexes,
//! models) runs on tokio's blocking pool; a request body is bounded (uploads by their own
//! limit, streamed to disk); shutdown stops accepting, then waits for the generations in
//! flight to finish and record their answers, then stops the fine-tuning job running (it
//! checkpoints and resumes next time).

mod adapters;
mod auth;
mod datanets;
mod error;
mod extract;
mod jobs;
mod keys;
mod ledger;
mod limits;
mod metrics;
mod money;
mod openai;
mod query;
mod records;
mod state;
mod ui;
mod x402;

use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use provdb::Db;
use provdb::inference::llama::{Generator, GeneratorOptions, LlamaModel};

pub use state::ServeLimits;
pub(crate) use x402::X402Config;

use error::ApiError;
use state::{AppState, Shared};

/// What `provdb serve` loads and where it listens.
pub(crate) struct ServeConfig {
    pub(crate) addr: SocketAddr,
    /// The generator (GGUF or safetensors folder); `None`: the default when present.
    pub(crate) model: Option<std::path::PathBuf>,
    /// The embedder folder; `None`: the default when present.
    pub(crate) embedder: Option<std::path::PathBuf>,
    pub(crate) adapter_cache_bytes: usize,
    pub(crate) limits: ServeLimits,
    /// The largest fee one answer may carry (`--max-fee-wei`).
    pub(crate) max_fee_wei: u128,
    /// x402 payments (`--x402`): off when `None`.
    pub(crate) x402: Option<X402Config>,
}

/// Loads the models, binds, serves until SIGINT or SIGTERM, then drains.
pub(crate) fn run(data: &FsPath, config: ServeConfig) -> anyhow::Result<()> {
    let mut db = Db::open(data)?.with_max_fee_wei(config.max_fee_wei);
    if let Some(embedder) = provdb::models::load_embedder(config.embedder.as_deref())? {
        db = db.with_embedder(embedder);
    }
    let model_path = provdb::models::generator_path(config.model.as_deref());
    let (generator, model_name) = if config.model.is_some() || model_path.exists() {
        let model = LlamaModel::load(&model_path)?;
        // Named as `provdb ask` names it, so model fee policies apply alike.
        let name = provdb::models::generator_name(&model_path);
        let generator = Arc::new(Generator::new(
            Arc::clone(&model),
            GeneratorOptions::default(),
        )?);
        // Plain chat and cited answers share the batching generator.
        db = db
            .with_generator(model, name.clone())
            .with_adapter_cache_bytes(config.adapter_cache_bytes)
            .with_batching_generator(Arc::clone(&generator));
        (Some(generator), Some(name))
    } else {
        eprintln!(
            "provdb serve: no generator model at {} (scripts/fetch-models.sh): chat is off",
            model_path.display()
        );
        (None, None)
    };
    let jobs = match generator {
        Some(_) => Some(provdb::factory::JobRunner::start(db.clone())?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("provdb-http")
        .enable_all()
        .build()?;
    let mut state = AppState::new(db, generator, model_name, jobs, config.limits);
    if let Some(x402) = config.x402 {
        state.x402 = Some(runtime.block_on(x402::X402::load(x402))?);
    }
    runtime.block_on(serve(Arc::new(state), config.addr))
}

async fn serve(state: Shared, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to find the port (with --addr 127.0.0.1:0).
    println!("provdb serve: listening on http://{local}");
    let app = router(Arc::clone(&state));
    // The peer's address counts the unsigned requests of x402 clients, which have no key.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    eprintln!("provdb serve: stopping; waiting for generations in flight");
    state.gate.wait_idle().await;
    if state.jobs.is_some() {
        // The running job stops after its step with a checkpoint; it resumes next time.
        let stopping = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(jobs) = &stopping.jobs {
                jobs.stop();
            }
        })
        .await;
    }
    eprintln!("provdb serve: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// The HTTP API over `db` without models (chat, embeddings and fine-tuning answer as
/// `provdb serve` does when no model is there): the same routes, authentication, limits and
/// error mapping as the server, for in-process callers that have no socket (the fuzz harness).
pub fn api_router(db: Db, limits: ServeLimits) -> Router {
    router(Arc::new(AppState::new(db, None, None, None, limits)))
}

fn router(state: Shared) -> Router {
    let max_body = state.limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/me", get(auth::me))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route("/v1/datanets", get(datanets::list).post(datanets::create))
        .route("/v1/datanets/{name}", get(datanets::show))
        .route(
            "/v1/datanets/{name}/records",
            // Uploads stream to disk under their own limit (--max-upload-mb).
            get(records::list)
                .post(records::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/datanets/{name}/access-requests",
            post(datanets::request_access),
        )
        .route(
            "/v1/datanets/{name}/grants",
            get(datanets::grants).post(datanets::grant),
        )
        .route(
            "/v1/datanets/{name}/grants/{address}",
            delete(datanets::revoke),
        )
        .route("/v1/datanets/{name}/curators", post(datanets::add_curator))
        .route(
            "/v1/datanets/{name}/curators/{address}",
            delete(datanets::remove_curator),
        )
        .route(
            "/v1/records/{id}",
            get(records::show)
                .patch(records::curate)
                .delete(records::remove),
        )
        .route("/v1/search", post(query::search))
        .route("/v1/sql", post(query::sql))
        .route("/v1/prices", get(money::list))
        .route("/v1/prices/datanets/{name}", put(money::set_datanet))
        .route("/v1/prices/models/{name}", put(money::set_model))
        .route("/v1/prices/adapters/{id}", put(money::set_adapter))
        .route("/v1/account", get(money::show))
        .route("/v1/account/refund", post(money::refund))
        .route("/v1/accounts/{address}/credits", post(money::credit))
        .route("/v1/ledger/entries", get(ledger::entries))
        .route("/v1/ledger/verify", get(ledger::verify))
        .route("/v1/epochs", get(ledger::epochs).post(ledger::close_epoch))
        .route("/v1/epochs/{epoch}/proofs/{address}", get(ledger::proof))
        .route("/v1/chain/status", get(ledger::chain_status))
        .route("/v1/adapters", get(adapters::list))
        .route("/v1/adapters/{id}", get(adapters::show))
        .route(
            "/v1/adapters/{id}/visibility",
            post(adapters::set_visibility),
        )
        .route("/v1/adapters/{id}/load", post(adapters::load))
        .route("/v1/adapters/{id}/unload", post(adapters::unload))
        .route("/v1/models", get(adapters::models))
        .route("/v1/chat/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/fine_tuning/jobs", get(jobs::list).post(jobs::create))
        .route("/v1/fine_tuning/jobs/{id}", get(jobs::show))
        .route("/v1/fine_tuning/jobs/{id}/events", get(jobs::events))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/fine_tuning/jobs/{id}/resume", post(jobs::resume))
        .route("/v1/fine_tuning/jobs/{id}/publish", post(jobs::publish))
        .fallback(|| async { ApiError::not_found("no such route (see docs/http-api.md)") });
    Router::new()
        .route("/", get(ui::index))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
        )
        .route("/metrics", get(metrics::text))
        .route("/{file}", get(ui::file))
        .merge(api)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Times out requests whose response does not start in time, and counts every request.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await
    {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!(
            "the request took over {} s (provdb serve --timeout-s)",
            state.limits.request_timeout.as_secs()
        ))
        .into_response(),
    };
    state.metrics.request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
