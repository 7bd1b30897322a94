//! API key routes for admins, so keys are managed while the server runs (the CLI's
//! `provdb key` needs the database to itself). Secrets are shown once, at creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use provdb::KeyRole;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;
use crate::views::key_view;

/// `GET /v1/keys`.
pub(crate) async fn list(State(state): State<Shared>, auth: Auth) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "listing keys")?;
    blocking(move || {
        let keys: Vec<Value> = state.db.api_keys()?.iter().map(key_view).collect();
        Ok(Json(json!({ "keys": keys })))
    })
    .await
}

/// `POST /v1/keys` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    address: String,
    role: String,
    #[serde(default)]
    label: String,
}

/// `POST /v1/keys`: the new key, shown once.
pub(crate) async fn create(
    State(state): State<Shared>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(KeyRole::Admin, "making keys")?;
    let address = body
        .address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid address '{}': {e}", body.address)))?;
    let role: KeyRole = body
        .role
        .parse()
        .map_err(|e: provdb::storage::StorageError| ApiError::bad_request(e.to_string()))?;
    blocking(move || {
        let (key, token) = state.db.create_api_key(address, role, &body.label)?;
        let mut view = key_view(&key);
        view["key"] = json!(token);
        Ok((StatusCode::CREATED, Json(view)))
    })
    .await
}

/// `DELETE /v1/keys/{id}`: revokes.
pub(crate) async fn revoke(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "revoking keys")?;
    blocking(move || Ok(Json(key_view(&state.db.revoke_api_key(&id)?)))).await
}
