//! OpenAI-compatible routes: `POST /v1/chat/completions` (plain chat batched across requests
//! and adapters; with `datanets`, a cited answer recorded in the ledger) and
//! `POST /v1/embeddings`.

mod chat;
mod embeddings;
mod request;

pub(crate) use chat::completions;
pub(crate) use embeddings::embeddings;

/// Seconds since the Unix epoch (OpenAI's `created`).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
