//! Ledger routes: entries (through the `attributions` table, so they are filtered by what the
//! caller may read), verification, epochs and proofs, and the chain's view of them.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use provdb::{Address, KeyRole, QueryLimits};
use provdb_chain::RetryPolicy;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiQuery;
use crate::http::state::Shared;
use crate::views::{EpochView, ProofView};

/// `GET /v1/ledger/entries` query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntriesQuery {
    answer_id: Option<String>,
    contributor: Option<String>,
    limit: Option<usize>,
}

/// `0x` and hex digits only: safe to put in a SQL literal.
fn hex_literal(text: &str, what: &str, bytes: usize) -> ApiResult<String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != bytes * 2 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "invalid {what} '{text}': 0x and {} hex digits",
            bytes * 2
        )));
    }
    Ok(format!("0x{}", digits.to_ascii_lowercase()))
}

/// `GET /v1/ledger/entries`: newest first.
pub(crate) async fn entries(
    State(state): State<Shared>,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> ApiResult<Json<Value>> {
    let mut conditions = Vec::new();
    if let Some(id) = &query.answer_id {
        conditions.push(format!(
            "answer_id = '{}'",
            hex_literal(id, "answer id", 32)?
        ));
    }
    if let Some(address) = &query.contributor {
        conditions.push(format!(
            "contributor = '{}'",
            hex_literal(address, "address", 20)?
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let sql = format!(
        "SELECT seq, answer_id, ts, datanet, record_id, chunk_id, contributor, role, \
         weight_ppm, CAST(amount_wei AS VARCHAR) AS amount_wei, model, adapter, entry_hash \
         FROM attributions {filter} ORDER BY seq DESC LIMIT {limit}"
    );
    blocking(move || {
        let output = state.db.sql(&sql, who.caller(), QueryLimits::default())?;
        let mut writer = provdb::query::arrow::json::ArrayWriter::new(Vec::new());
        for batch in &output.batches {
            writer
                .write(batch)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let bytes = writer.into_inner();
        let rows: Value = if bytes.is_empty() {
            json!([])
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?
        };
        Ok(Json(json!({ "entries": rows })))
    })
    .await
}

/// `GET /v1/ledger/verify`.
pub(crate) async fn verify(State(state): State<Shared>, _: Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let check = state.db.verify_ledger()?;
        Ok(Json(json!({
            "ok": check.broken.is_none(),
            "entries": check.entries,
            "head": format!("0x{}", hex::encode(check.head)),
            "broken_at": check.broken.as_ref().map(|(seq, _)| seq),
            "reason": check.broken.as_ref().map(|(_, why)| why),
        })))
    })
    .await
}

/// `GET /v1/epochs`.
pub(crate) async fn epochs(State(state): State<Shared>, _: Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let epochs: Vec<EpochView> = state.db.epochs()?.iter().map(EpochView::from).collect();
        Ok(Json(json!({ "epochs": epochs })))
    })
    .await
}

/// `POST /v1/epochs`: an admin closes the open entries into an epoch.
pub(crate) async fn close_epoch(State(state): State<Shared>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "closing an epoch")?;
    blocking(move || Ok(Json(json!(EpochView::from(&state.db.close_epoch()?))))).await
}

/// `GET /v1/epochs/{epoch}/proofs/{address}` (`latest` for the last epoch).
pub(crate) async fn proof(
    State(state): State<Shared>,
    _: Auth,
    Path((epoch, address)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let epoch = match epoch.as_str() {
        "latest" => None,
        n => Some(
            n.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid epoch '{n}'")))?,
        ),
    };
    let account: Address = address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid address '{address}': {e}")))?;
    blocking(move || {
        let proof = state.db.epoch_proof(account, epoch)?;
        Ok(Json(json!(ProofView::from(&proof))))
    })
    .await
}

/// `GET /v1/chain/status`: local epochs and batches against the chain's, when a chain is
/// configured (`provdb chain deploy`); a chain that does not answer is reported, not an error.
/// The RPC URL (which often carries a provider's key) shows as scheme, host and port only, to
/// every key, and an error quoting it is redacted alike.
pub(crate) async fn chain_status(State(state): State<Shared>, _: Auth) -> ApiResult<Json<Value>> {
    let data = state.db.dir().to_path_buf();
    if !provdb_chain::state::state_path(&data).exists() {
        return Ok(Json(json!({ "configured": false })));
    }
    let retry = RetryPolicy {
        attempts: 1,
        attempt_timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let report = provdb_chain::status(state.db.store(), &data, None, retry).await;
    Ok(Json(match report {
        Ok(mut report) => {
            report.rpc_url = provdb_chain::redact_rpc_url(&report.rpc_url);
            json!({ "configured": true, "reachable": true, "status": report })
        }
        Err(e) => {
            let mut error = e.to_string();
            if let Ok(chain) = provdb_chain::ChainState::load(&data) {
                error = provdb_chain::redact_rpc_url_in(&error, &chain.rpc_url);
            }
            json!({ "configured": true, "reachable": false, "error": error })
        }
    }))
}
