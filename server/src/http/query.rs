//! Search and SQL routes. Both run as the caller: a Datanet it may not read is unknown to it
//! (search answers 404; SQL's tables and functions never see it). Both pass a gate first
//! (`limits::Gate`: bounded concurrency, 429 past it); a SQL query runs within the server's
//! time, memory and result-size limits (`provdb serve --sql-*`), each refusal naming its limit.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use provdb::query::arrow::array::RecordBatch;
use provdb::query::arrow::ipc::writer::StreamWriter;
use provdb::{QueryLimits, QueryOutput, SearchMode, SearchOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;

/// Longest search text or SQL query, in bytes.
const MAX_QUERY_BYTES: usize = 64 << 10;
/// Rows a SQL answer carries at most.
const MAX_SQL_ROWS: usize = 100_000;
/// Time past a query's own limit before its client is answered without it.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);
/// The media type of an Arrow IPC stream.
pub(crate) const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// `POST /v1/search` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchBody {
    datanet: String,
    query: String,
    k: Option<usize>,
    mode: Option<String>,
}

/// `POST /v1/search`.
pub(crate) async fn search(
    State(state): State<Shared>,
    Auth(who): Auth,
    ApiJson(body): ApiJson<SearchBody>,
) -> ApiResult<Json<Value>> {
    if body.query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the query is over {MAX_QUERY_BYTES} bytes"
        )));
    }
    let mode = match body.mode.as_deref() {
        Some(mode) => mode
            .parse::<SearchMode>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        None if state.db.embedder().is_some() => SearchMode::Hybrid,
        None => SearchMode::Bm25,
    };
    let options = SearchOptions {
        k: body.k.unwrap_or(10),
        mode,
        ..SearchOptions::default()
    };
    // Held on the blocking thread until the search (and its embedding) is done.
    let ticket = state.search_gate.enter().await?;
    blocking(move || {
        let _ticket = ticket;
        state.db.datanet_role(&who, &body.datanet)?;
        let hits = state
            .db
            .search_as(&body.datanet, &body.query, &options, who.caller())?;
        Ok(Json(json!({ "hits": hits })))
    })
    .await
}

/// `POST /v1/sql` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlBody {
    query: String,
    max_rows: Option<usize>,
}

/// `POST /v1/sql`: JSON rows, or an Arrow IPC stream when the client accepts one.
pub(crate) async fn sql(
    State(state): State<Shared>,
    Auth(who): Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SqlBody>,
) -> ApiResult<Response> {
    if body.query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the query is over {MAX_QUERY_BYTES} bytes"
        )));
    }
    let arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    let limits = QueryLimits {
        timeout: state.limits.sql_timeout.min(state.limits.request_timeout),
        memory_bytes: state.limits.sql_memory_bytes,
        max_rows: Some(body.max_rows.unwrap_or(1000).min(MAX_SQL_ROWS)),
        max_result_bytes: state.limits.sql_max_result_bytes,
    };
    let ticket = state.sql_gate.enter().await?;
    // The query runs on a blocking thread of its own (its own runtime: see `Db::sql`), holding
    // its ticket until it is done. Its client is answered at the deadline even when the query
    // is inside one long expression that its own timeout cannot interrupt until it returns.
    let running = blocking(move || {
        let _ticket = ticket;
        Ok(state.db.sql(&body.query, who.caller(), limits)?)
    });
    let output = tokio::time::timeout(limits.timeout + DEADLINE_GRACE, running)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "the query timed out after {:.0} s, its time limit, and was cancelled \
                 (provdb serve --sql-timeout-s)",
                limits.timeout.as_secs_f64()
            ))
        })??;
    if arrow {
        return arrow_stream(&output);
    }
    json_rows(&output)
}

fn arrow_stream(output: &QueryOutput) -> ApiResult<Response> {
    let failed = |e: provdb::query::arrow::error::ArrowError| {
        ApiError::internal(format!("cannot write the Arrow stream: {e}"))
    };
    let mut writer = StreamWriter::try_new(Vec::new(), &output.schema).map_err(failed)?;
    for batch in &output.batches {
        writer.write(batch).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    let bytes = writer.into_inner().map_err(failed)?;
    let mut response = bytes.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ARROW_STREAM));
    Ok(response)
}

/// `{"columns", "rows", "truncated"}`, the rows as Arrow's JSON writer wrote them: passed
/// through as bytes, so a DECIMAL(38,0) wei amount keeps every digit (a JSON number parsed into
/// f64 or u64 would not).
fn json_rows(output: &QueryOutput) -> ApiResult<Response> {
    let columns: Vec<&str> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let mut writer = provdb::query::arrow::json::ArrayWriter::new(Vec::new());
    let batches: Vec<&RecordBatch> = output.batches.iter().collect();
    writer
        .write_batches(&batches)
        .and_then(|()| writer.finish())
        .map_err(|e| ApiError::internal(format!("cannot write rows as JSON: {e}")))?;
    let rows = writer.into_inner();
    let rows = if rows.is_empty() {
        b"[]".to_vec()
    } else {
        rows
    };
    let columns = serde_json::to_string(&columns)
        .map_err(|e| ApiError::internal(format!("cannot write column names: {e}")))?;
    let mut body = Vec::with_capacity(rows.len() + columns.len() + 48);
    body.extend_from_slice(b"{\"columns\":");
    body.extend_from_slice(columns.as_bytes());
    body.extend_from_slice(b",\"rows\":");
    body.extend_from_slice(&rows);
    body.extend_from_slice(format!(",\"truncated\":{}}}", output.truncated).as_bytes());
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
