//! Datanet routes: list, create, show; access requests, read grants and curators.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use provdb::{Address, Datanet, DatanetRole, KeyRole, Status, Visibility};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::{Auth, require_on};
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;

fn parse_address(text: &str, what: &str) -> ApiResult<Address> {
    text.parse()
        .map_err(|e| ApiError::bad_request(format!("invalid {what} '{text}': {e}")))
}

/// `GET /v1/datanets`: the Datanets the caller may read.
pub(crate) async fn list(State(state): State<Shared>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let caller = who.caller();
        let store = state.db.store();
        let mut out = Vec::new();
        for datanet in store.datanets()? {
            if caller.may_read(store, &datanet)? {
                out.push(state.db.datanet_info(&datanet.name)?);
            }
        }
        Ok(Json(json!({ "datanets": out })))
    })
    .await
}

/// `POST /v1/datanets` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateDatanet {
    name: String,
    #[serde(default)]
    description: String,
    license: Option<String>,
    text_column: Option<String>,
    #[serde(default)]
    require_signatures: bool,
    /// The chain id of the EIP-712 domain its records are signed in (default 1).
    chain_id: Option<u64>,
    #[serde(default)]
    private: bool,
    /// New records wait for a curator ("pending") or are approved on ingest ("approved").
    initial_status: Option<String>,
}

/// `POST /v1/datanets`: the caller becomes the owner.
pub(crate) async fn create(
    State(state): State<Shared>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateDatanet>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require(KeyRole::Curator, "creating a datanet")?;
    let mut datanet = Datanet::new(body.name);
    datanet.description = body.description;
    datanet.license = body.license.unwrap_or(datanet.license);
    datanet.text_column = body.text_column.unwrap_or(datanet.text_column);
    datanet.require_signatures = body.require_signatures;
    if let Some(chain_id) = body.chain_id {
        datanet.signatures.chain_id = chain_id;
    }
    datanet.owner = Some(auth.0.address);
    if body.private {
        datanet.visibility = Visibility::Private;
    }
    if let Some(status) = body.initial_status {
        datanet.initial_status = status
            .parse::<Status>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    blocking(move || {
        let info = state.db.create_datanet(datanet)?;
        Ok((StatusCode::CREATED, Json(json!(info))))
    })
    .await
}

/// `GET /v1/datanets/{name}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let (_, role) = state.db.datanet_role(&who, &name)?;
        let mut info = json!(state.db.datanet_info(&name)?);
        info["my_role"] = json!(role.as_str());
        Ok(Json(info))
    })
    .await
}

/// `POST /v1/datanets/{name}/access-requests` body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessRequestBody {
    #[serde(default)]
    message: String,
}

/// `POST /v1/datanets/{name}/access-requests`: 202 whether or not the Datanet exists (no
/// existence oracle for private names).
pub(crate) async fn request_access(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    body: Option<ApiJson<AccessRequestBody>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let message = body.map(|ApiJson(b)| b.message).unwrap_or_default();
    blocking(move || {
        state.db.request_access(&name, who.address, &message)?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "requested": true }))))
    })
    .await
}

/// The Datanet `name` if the caller curates it (404 when it may not read it, 403 when it
/// only reads it).
fn curated(
    state: &Shared,
    who: &provdb::Principal,
    name: &str,
    min: DatanetRole,
) -> ApiResult<Datanet> {
    let (datanet, role) = state.db.datanet_role(who, name)?;
    require_on(role, min, "managing access")?;
    Ok(datanet)
}

fn access_view(state: &Shared, datanet: &Datanet) -> ApiResult<Value> {
    let store = state.db.store();
    let grants: Vec<Value> = store
        .grants(datanet.id)?
        .iter()
        .map(|g| {
            json!({
                "grantee": g.grantee.to_string(),
                "granted_by": g.granted_by.map(|a| a.to_string()),
                "granted_at": g.granted_at_ms,
            })
        })
        .collect();
    let requests: Vec<Value> = store
        .access_requests(datanet.id)?
        .iter()
        .map(|r| {
            json!({
                "address": r.address.to_string(),
                "message": r.message,
                "requested_at": r.requested_at_ms,
            })
        })
        .collect();
    let curators: Vec<String> = store
        .curators(datanet.id)?
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    Ok(json!({
        "owner": datanet.owner.map(|a| a.to_string()),
        "grants": grants,
        "requests": requests,
        "curators": curators,
    }))
}

/// `GET /v1/datanets/{name}/grants`.
pub(crate) async fn grants(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let datanet = curated(&state, &who, &name, DatanetRole::Curator)?;
        Ok(Json(access_view(&state, &datanet)?))
    })
    .await
}

/// `POST /v1/datanets/{name}/grants` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantBody {
    grantee: String,
}

/// `POST /v1/datanets/{name}/grants`: gives read access (answering a request).
pub(crate) async fn grant(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Json<Value>> {
    let grantee = parse_address(&body.grantee, "grantee")?;
    blocking(move || {
        let datanet = curated(&state, &who, &name, DatanetRole::Curator)?;
        let sequence = state.db.grant_read(&datanet, grantee, who.address)?;
        Ok(Json(json!({ "sequence": sequence })))
    })
    .await
}

/// `DELETE /v1/datanets/{name}/grants/{address}`: revokes (or declines a request).
pub(crate) async fn revoke(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path((name, address)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let grantee = parse_address(&address, "address")?;
    blocking(move || {
        let datanet = curated(&state, &who, &name, DatanetRole::Curator)?;
        let sequence = state.db.revoke_read(&datanet, grantee)?;
        Ok(Json(json!({ "sequence": sequence })))
    })
    .await
}

/// `POST /v1/datanets/{name}/curators` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CuratorBody {
    address: String,
}

/// `POST /v1/datanets/{name}/curators`: the owner adds a curator.
pub(crate) async fn add_curator(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<CuratorBody>,
) -> ApiResult<Json<Value>> {
    let address = parse_address(&body.address, "address")?;
    blocking(move || {
        let datanet = curated(&state, &who, &name, DatanetRole::Owner)?;
        state.db.add_curator(&datanet, address, who.address)?;
        Ok(Json(access_view(&state, &datanet)?))
    })
    .await
}

/// `DELETE /v1/datanets/{name}/curators/{address}`.
pub(crate) async fn remove_curator(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path((name, address)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let address = parse_address(&address, "address")?;
    blocking(move || {
        let datanet = curated(&state, &who, &name, DatanetRole::Owner)?;
        state.db.remove_curator(&datanet, address)?;
        Ok(Json(access_view(&state, &datanet)?))
    })
    .await
}
