//! `POST /v1/embeddings`: OpenAI's embeddings API over the sentence embedder. Vectors come as
//! JSON floats, or as base64 of little-endian f32 (`encoding_format: "base64"`, what OpenAI's
//! Python client asks for by default).

use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;

/// Most texts in one request.
const MAX_INPUTS: usize = 256;
/// Longest text, in bytes (the embedder reads at most its 256 first tokens anyway).
const MAX_INPUT_BYTES: usize = 32 << 10;

/// `POST /v1/embeddings` body. Unknown fields are ignored.
#[derive(Deserialize)]
pub(crate) struct EmbeddingsRequest {
    input: Value,
    model: Option<String>,
    encoding_format: Option<String>,
}

fn texts(input: &Value) -> ApiResult<Vec<String>> {
    let texts = match input {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(ApiError::bad_request(
                    "input must be a string or an array of strings (token arrays are not taken)",
                )),
            })
            .collect::<ApiResult<_>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "input must be a string or an array of strings",
            ));
        }
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ApiError::bad_request(format!(
            "send 1 to {MAX_INPUTS} inputs, got {}",
            texts.len()
        )));
    }
    if let Some(long) = texts.iter().position(|t| t.len() > MAX_INPUT_BYTES) {
        return Err(ApiError::bad_request(format!(
            "input {long} is over {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(texts)
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Shared>,
    _: Auth,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> ApiResult<Json<Value>> {
    let embedder = state
        .db
        .embedder()
        .cloned()
        .ok_or_else(|| ApiError::unavailable("no embedder model is loaded"))?;
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown encoding_format '{other}' (float, base64)"
            )));
        }
    };
    let texts = texts(&request.input)?;
    let model = request
        .model
        .unwrap_or_else(|| embedder.model_id().to_string());
    // Held on the blocking thread until the model is done with the texts.
    let ticket = state.search_gate.enter().await?;
    blocking(move || {
        let _ticket = ticket;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder
            .embed(&refs)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(index, vector)| {
                let embedding = if base64 {
                    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(vector)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let tokens: usize = texts
            .iter()
            .map(|t| embedder.token_count(t).unwrap_or(0))
            .sum();
        Ok(Json(json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })))
    })
    .await
}
