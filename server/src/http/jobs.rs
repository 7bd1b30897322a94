//! Fine-tuning job routes (`/v1/fine_tuning/jobs`, after OpenAI's): create, list, show, events
//! (JSON, or a server-sent event stream that follows the job to its end), cancel, resume,
//! publish. A job is visible to its owner and admins only (404 to everyone else); its training
//! set is read with the owner's access as of when it starts or resumes, through the key that
//! created it (a revoked key's job fails, training nothing), so no one trains on a Datanet
//! they may not read. A published adapter is private to the Datanet's readers until the
//! Datanet's owner makes it public (`POST /v1/adapters/{id}/visibility`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use provdb::factory::{FineTuneSpec, JobId, JobRunner, job_view};
use provdb::storage::JobRecord;
use provdb::{KeyRole, Principal};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::adapters::adapter_view;
use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::state::Shared;

/// Events sent per poll of a stream, and the pause between polls.
const EVENT_BATCH: usize = 256;
const EVENT_POLL: Duration = Duration::from_millis(500);

fn runner(state: &Shared) -> ApiResult<&JobRunner> {
    state
        .jobs
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("no generator model is loaded, so no fine-tuning"))
}

fn parse_id(text: &str) -> ApiResult<JobId> {
    text.parse()
        .map_err(|e: provdb::Error| ApiError::bad_request(e.to_string()))
}

/// The job if `who` owns it or is an admin; else 404, as for an unknown id.
fn visible_job(state: &Shared, who: &Principal, id: JobId) -> ApiResult<JobRecord> {
    match state.db.fine_tune_job(id) {
        Ok(job) if job.owner == who.address || who.has(KeyRole::Admin) => Ok(job),
        _ => Err(ApiError::not_found(format!("unknown fine-tuning job {id}"))),
    }
}

/// A job as the API shows it, with `published`: whether its adapter is in the adapter store.
fn view(state: &Shared, job: &JobRecord) -> Value {
    let mut view = job_view(job);
    let published = view["result"]["adapter_id"]
        .as_str()
        .and_then(|id| provdb::inference::lora::AdapterId::parse(id).ok())
        .is_some_and(|id| state.db.adapter_store().info(id).is_ok());
    view["published"] = json!(published);
    view
}

/// `POST /v1/fine_tuning/jobs`: queues a job owned by the caller.
pub(crate) async fn create(
    State(state): State<Shared>,
    auth: Auth,
    ApiJson(spec): ApiJson<FineTuneSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(KeyRole::Contributor, "fine-tuning")?;
    runner(&state)?;
    blocking(move || {
        let job = state
            .db
            .create_fine_tune_job_for_key(spec, &auth.0)
            .map_err(ApiError::from)?;
        runner(&state)?.submit(JobId(job.job_id));
        Ok((StatusCode::CREATED, Json(view(&state, &job))))
    })
    .await
}

/// `GET /v1/fine_tuning/jobs`: the caller's jobs (an admin's: all), newest first.
pub(crate) async fn list(State(state): State<Shared>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let mut jobs: Vec<Value> = state
            .db
            .fine_tune_jobs()?
            .iter()
            .filter(|j| j.owner == who.address || who.has(KeyRole::Admin))
            .map(|j| view(&state, j))
            .collect();
        jobs.reverse();
        Ok(Json(json!({ "object": "list", "data": jobs })))
    })
    .await
}

/// `GET /v1/fine_tuning/jobs/{id}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    blocking(move || Ok(Json(view(&state, &visible_job(&state, &who, id)?)))).await
}

/// `GET /v1/fine_tuning/jobs/{id}/events` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    after: u64,
}

fn event_value(event: &provdb::storage::JobEvent) -> Value {
    let mut value: Value = serde_json::from_str(&event.json).unwrap_or(Value::Null);
    value["seq"] = json!(event.seq);
    value["created_at"] = json!(event.at_ms);
    value
}

/// `GET /v1/fine_tuning/jobs/{id}/events`: JSON, or with `Accept: text/event-stream` a
/// stream that follows the job until it ends.
pub(crate) async fn events(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let check = state.clone();
    let principal = who.clone();
    blocking(move || visible_job(&check, &principal, id).map(|_| ())).await?;
    if !streaming {
        let events = blocking(move || {
            Ok(state
                .db
                .fine_tune_events(id, query.after, 10_000)?
                .iter()
                .map(event_value)
                .collect::<Vec<_>>())
        })
        .await?;
        return Ok(Json(json!({ "object": "list", "data": events })).into_response());
    }
    // Poll storage for new events; end once the job is final and everything is sent.
    let events = stream::unfold(
        (state, query.after, false),
        move |(state, after, done)| async move {
            if done {
                return None;
            }
            loop {
                let poll = state.clone();
                let read = blocking(move || {
                    let job = poll.db.fine_tune_job(id)?;
                    let events = poll.db.fine_tune_events(id, after, EVENT_BATCH)?;
                    Ok((job.status.is_final(), events))
                })
                .await;
                let (is_final, batch) = match read {
                    Ok(read) => read,
                    Err(e) => {
                        let error = json!({"error": {"message": e.message()}}).to_string();
                        return Some((vec![error], (state, after, true)));
                    }
                };
                if !batch.is_empty() {
                    let last = batch.last().map_or(after, |e| e.seq);
                    let data = batch.iter().map(|e| event_value(e).to_string()).collect();
                    return Some((data, (state, last, false)));
                }
                if is_final {
                    return Some((vec!["[DONE]".to_string()], (state, after, true)));
                }
                tokio::time::sleep(EVENT_POLL).await;
            }
        },
    );
    let events = futures::StreamExt::flat_map(events, |batch: Vec<String>| {
        stream::iter(
            batch
                .into_iter()
                .map(|data| Ok::<_, Infallible>(Event::default().data(data))),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `POST /v1/fine_tuning/jobs/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    blocking(move || {
        visible_job(&state, &who, id)?;
        Ok(Json(view(&state, &runner(&state)?.cancel(id)?)))
    })
    .await
}

/// `POST /v1/fine_tuning/jobs/{id}/resume`: queues a cancelled or failed job again.
pub(crate) async fn resume(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    blocking(move || {
        visible_job(&state, &who, id)?;
        let runner = runner(&state)?;
        let job = state.db.resume_fine_tune_job(id)?;
        runner.submit(id);
        Ok(Json(view(&state, &job)))
    })
    .await
}

/// `POST /v1/fine_tuning/jobs/{id}/publish`: adds the adapter (owned by the job's owner) to
/// the adapter store with its training provenance.
pub(crate) async fn publish(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    blocking(move || {
        let job = visible_job(&state, &who, id)?;
        let info = state.db.publish_fine_tune_job(id, job.owner)?;
        Ok(Json(adapter_view(&info)))
    })
    .await
}
