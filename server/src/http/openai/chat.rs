//! `POST /v1/chat/completions`.
//!
//! Plain chat goes to the batching generator (one decoding loop for every request, whatever
//! its adapters); with `datanets` the last user message is answered by `Db::ask` (retrieval,
//! numbered sources, verified citations, ledger). Either way the work runs off the async
//! threads, holding a place in the generation gate until it ends (ledger write included), and
//! sends its text through a channel. Adapters named in `model` are first resolved among those
//! the caller may see. The response starts with the first piece of text, so a request that
//! fails before any text gets a plain HTTP error; a client that goes away stops the
//! generation (a cited answer cut short is still recorded: its sources were used).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, stream};
use provdb::inference::llama::{
    ChatMessage, FinishReason, GenerationEvent, GenerationRequest, SamplingParams,
};
use provdb::inference::lora::AdapterMix;
use provdb::{Answer, AskRequest, Attribution, SearchMode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::request::{ChatRequest, Conversation};
use crate::http::auth::MaybeAuth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;
use crate::http::x402;

/// What the generating task sends.
enum ChatEvent {
    Text(String),
    Done(Finish),
    Failed(ApiError),
}

struct Finish {
    reason: &'static str,
    prompt_tokens: usize,
    completion_tokens: usize,
    answer: Option<Box<Answer>>,
}

/// `POST /v1/chat/completions`.
pub(crate) async fn completions(
    State(state): State<Shared>,
    MaybeAuth(key): MaybeAuth,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChatRequest>,
) -> ApiResult<Response> {
    let conversation = request.conversation()?;
    let max_tokens = request.max_new_tokens()?;
    // Before any work, with or without a model: a named fee or a bad cap is a 400.
    let max_fee_wei = request.max_fee()?;
    let base = state.model_name.clone().ok_or_else(|| {
        ApiError::unavailable(
            "no generator model is loaded (scripts/fetch-models.sh, or provdb serve --model FILE)",
        )
    })?;
    let (sender, receiver) = mpsc::channel(256);
    let mut receipt = None;
    match request.datanets.clone().filter(|d| !d.is_empty()) {
        Some(datanets) => {
            let mut ask = AskRequest {
                datanets,
                question: conversation.question()?.to_string(),
                k: request.k.unwrap_or(4),
                mode: match request.mode.as_deref() {
                    Some(m) => m
                        .parse::<SearchMode>()
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                    None if state.db.embedder().is_some() => SearchMode::Hybrid,
                    None => SearchMode::Bm25,
                },
                adapters: request.adapter_specs(&base)?,
                max_fee_wei,
                attribution: match request.attribution.as_deref() {
                    Some(a) => a
                        .parse::<Attribution>()
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                    None => Attribution::Cited,
                },
                caller: provdb::Caller::anonymous(),
                max_tokens,
            };
            // A key's account pays, or an x402 payment (settled and credited by now).
            let peer = peer.as_ref().map(|Extension(info)| info);
            let payer = x402::resolve(&state, key, &headers, peer, &ask).await?;
            let who = payer.who;
            receipt = payer.receipt;
            let attach = |e: ApiError| match &receipt {
                Some(value) => e.with_header(x402::PAYMENT_RESPONSE, value.clone()),
                None => e,
            };
            ask.adapters = visible_specs(&state, &who, ask.adapters)
                .await
                .map_err(attach)?;
            ask.caller = who.caller();
            let names = ask.datanets.clone();
            let check = state.clone();
            blocking(move || {
                for name in &names {
                    check.db.datanet_role(&who, name)?;
                }
                Ok(())
            })
            .await
            .map_err(attach)?;
            start_answer(&state, ask, sender).await.map_err(attach)?;
        }
        None => {
            let who = key.ok_or_else(|| {
                ApiError::unauthorized("send an API key: Authorization: Bearer <key>")
            })?;
            let specs = visible_specs(&state, &who, request.adapter_specs(&base)?).await?;
            let params = SamplingParams {
                max_tokens,
                temperature: request.temperature.unwrap_or(0.0),
                top_p: request.top_p.unwrap_or(1.0),
                seed: request.seed.unwrap_or(42),
            };
            params
                .validate()
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            // Plain generation records no answer and charges no one: only free models and
            // adapters serve it.
            let (check, base, adapters) = (state.clone(), base.clone(), specs.clone());
            blocking(move || Ok(check.db.check_unpriced(&base, &adapters)?)).await?;
            start_chat(&state, conversation, specs, params, sender).await?;
        }
    }
    let response = respond(request.model, request.stream, receiver).await;
    match receipt {
        Some(value) => match response {
            Ok(mut response) => {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(x402::PAYMENT_RESPONSE, value);
                }
                Ok(response)
            }
            Err(e) => Err(e.with_header(x402::PAYMENT_RESPONSE, value)),
        },
        None => response,
    }
}

/// The adapters a request names, among those the caller may see (another is a 404 like an
/// unknown id), as whole ids.
async fn visible_specs(
    state: &Shared,
    who: &provdb::Principal,
    specs: Vec<String>,
) -> ApiResult<Vec<String>> {
    if specs.is_empty() {
        return Ok(specs);
    }
    let (state, caller) = (state.clone(), who.caller());
    blocking(move || Ok(state.db.visible_adapter_specs(&caller, &specs)?)).await
}

/// Cited answer: `Db::ask` on the blocking pool, generating through the shared batching
/// generator.
async fn start_answer(
    state: &Shared,
    request: AskRequest,
    sender: mpsc::Sender<ChatEvent>,
) -> ApiResult<()> {
    let ticket = state.gate.enter().await?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = state.db.ask(&request, &mut |piece| {
            sender
                .blocking_send(ChatEvent::Text(piece.to_string()))
                .is_ok()
        });
        let event = match result {
            Ok(answer) => {
                let tokens = answer.usage.completion_tokens;
                state.metrics.generation(tokens, started.elapsed());
                ChatEvent::Done(Finish {
                    reason: if tokens >= request.max_tokens {
                        "length"
                    } else {
                        "stop"
                    },
                    prompt_tokens: answer.usage.prompt_tokens,
                    completion_tokens: tokens,
                    answer: Some(Box::new(answer)),
                })
            }
            Err(e) => ChatEvent::Failed(e.into()),
        };
        // The slot is free before the client hears the end, so a client that asks again at
        // once is not refused by its own finished request.
        drop(ticket);
        // The client may be gone; the answer is recorded either way.
        let _ = sender.blocking_send(event);
    });
    Ok(())
}

/// Plain chat: the batching generator, its events forwarded from a blocking thread.
async fn start_chat(
    state: &Shared,
    conversation: Conversation,
    specs: Vec<String>,
    params: SamplingParams,
    sender: mpsc::Sender<ChatEvent>,
) -> ApiResult<()> {
    let generator = state
        .generator
        .clone()
        .ok_or_else(|| ApiError::unavailable("no generator model is loaded"))?;
    let ticket = state.gate.enter().await?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let run = || -> ApiResult<Option<Finish>> {
            let model = generator.model();
            let messages: Vec<ChatMessage<'_>> = conversation
                .messages
                .iter()
                .map(|(role, text)| ChatMessage::new(*role, text))
                .collect();
            let prompt = model.encode(&model.chat_template().conversation(&messages))?;
            let adapters = match state.db.adapter_cache() {
                Some(cache) if !specs.is_empty() => cache.mix(&specs)?,
                _ => AdapterMix::base(),
            };
            let prompt_tokens = prompt.len();
            let events = generator
                .submit(GenerationRequest {
                    prompt,
                    params,
                    adapters,
                })
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            for event in events {
                match event {
                    GenerationEvent::Token { text, .. } => {
                        if !text.is_empty() && sender.blocking_send(ChatEvent::Text(text)).is_err()
                        {
                            // The client is gone: dropping the events cancels the request.
                            return Ok(None);
                        }
                    }
                    GenerationEvent::Done { tokens, reason } => {
                        return Ok(Some(Finish {
                            reason: match reason {
                                FinishReason::EndOfTurn => "stop",
                                FinishReason::MaxTokens => "length",
                            },
                            prompt_tokens,
                            completion_tokens: tokens.len(),
                            answer: None,
                        }));
                    }
                    GenerationEvent::Failed(message) => return Err(ApiError::internal(message)),
                }
            }
            Err(ApiError::internal("the generator stopped"))
        };
        let event = match run() {
            Ok(Some(finish)) => {
                state
                    .metrics
                    .generation(finish.completion_tokens, started.elapsed());
                ChatEvent::Done(finish)
            }
            Ok(None) => return,
            Err(e) => ChatEvent::Failed(e),
        };
        // Free the slot before the client hears the end (see `start_answer`).
        drop(ticket);
        let _ = sender.blocking_send(event);
    });
    Ok(())
}

/// What every chunk and the final object share.
#[derive(Clone)]
struct Envelope {
    id: String,
    created: u64,
    model: String,
}

impl Envelope {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    }
}

/// Adds usage and provdb's fields (citations, answer id, who is paid) to `out`.
fn add_finish(out: &mut Value, finish: &Finish) {
    out["usage"] = json!({
        "prompt_tokens": finish.prompt_tokens,
        "completion_tokens": finish.completion_tokens,
        "total_tokens": finish.prompt_tokens + finish.completion_tokens,
    });
    if let Some(answer) = &finish.answer {
        out["answer_id"] = json!(answer.answer_id.to_string());
        out["citations"] = json!(answer.citations);
        out["split"] = json!(answer.split);
        out["dropped_markers"] = json!(answer.dropped_markers);
        out["attribution"] = json!(answer.attribution);
        out["fee_wei"] = json!(answer.fee_wei.to_string());
        out["training_attribution"] = json!(answer.training_attribution);
    }
}

fn error_body(error: &ApiError) -> Value {
    json!({"error": {"message": error.message(), "code": error.status().as_u16()}})
}

async fn respond(
    model: String,
    streaming: bool,
    mut receiver: mpsc::Receiver<ChatEvent>,
) -> ApiResult<Response> {
    let first = receiver
        .recv()
        .await
        .ok_or_else(|| ApiError::internal("the generation ended without a result"))?;
    let first = match first {
        ChatEvent::Failed(error) => return Err(error),
        event => event,
    };
    let envelope = Envelope {
        id: format!("chatcmpl-{}", hex::encode(rand::random::<[u8; 12]>())),
        created: unix_now(),
        model,
    };
    if streaming {
        return Ok(sse(envelope, first, receiver).into_response());
    }
    let mut text = String::new();
    let mut event = Some(first);
    loop {
        let next = match event.take() {
            Some(event) => Some(event),
            None => receiver.recv().await,
        };
        match next {
            Some(ChatEvent::Text(piece)) => text.push_str(&piece),
            Some(ChatEvent::Done(finish)) => {
                if let Some(answer) = &finish.answer {
                    text.clone_from(&answer.answer);
                }
                let mut out = json!({
                    "id": envelope.id,
                    "object": "chat.completion",
                    "created": envelope.created,
                    "model": envelope.model,
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish.reason,
                    }],
                });
                add_finish(&mut out, &finish);
                return Ok(Json(out).into_response());
            }
            Some(ChatEvent::Failed(error)) => return Err(error),
            None => return Err(ApiError::internal("the generation ended without a result")),
        }
    }
}

/// The answer as server-sent events: a role chunk, text chunks, a last chunk with the
/// finish reason and provdb's fields, then `[DONE]`.
fn sse(
    envelope: Envelope,
    first: ChatEvent,
    receiver: mpsc::Receiver<ChatEvent>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let head = envelope.chunk(json!({"role": "assistant", "content": ""}), None);
    let body = stream::unfold(
        (Some(first), receiver, envelope, false),
        |(pending, mut receiver, envelope, finished)| async move {
            if finished {
                return None;
            }
            let event = match pending {
                Some(event) => event,
                None => receiver.recv().await?,
            };
            let (data, finished) = match event {
                ChatEvent::Text(piece) => (envelope.chunk(json!({"content": piece}), None), false),
                ChatEvent::Done(finish) => {
                    let mut last = envelope.chunk(json!({}), Some(finish.reason));
                    add_finish(&mut last, &finish);
                    (last, true)
                }
                ChatEvent::Failed(error) => (error_body(&error), true),
            };
            Some((data.to_string(), (None, receiver, envelope, finished)))
        },
    );
    let events = stream::once(async move { head.to_string() })
        .chain(body)
        .chain(stream::once(async { "[DONE]".to_string() }))
        .map(|data| Ok(Event::default().data(data)));
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Seconds since the Unix epoch (OpenAI's `created`).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
