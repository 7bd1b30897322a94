//! OpenAI-compatible routes: `POST /v1/chat/completions` (plain chat batched across requests
//! and adapters; with `datanets`, a cited answer recorded in the ledger) and
//! `POST /v1/embeddings`.

mod chat;
mod embeddings;
mod request;

pub(crate) use chat::completions;
pub(crate) use embeddings::embeddings;
