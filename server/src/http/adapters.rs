//! Adapter routes (list, load into the cache, unload) and OpenAI's `GET /v1/models`: the base
//! model and `base:ADAPTER_ID` for every stored adapter.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use provdb::KeyRole;
use provdb::inference::lora::AdapterId;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::state::Shared;

/// An adapter as the API shows it: without `source`, the path it was added from (a server
/// path is nobody's business outside the server).
pub(crate) fn adapter_view(info: &provdb::inference::lora::AdapterInfo) -> Value {
    let mut view = json!(info);
    if let Some(object) = view.as_object_mut() {
        object.remove("source");
    }
    view
}

/// `GET /v1/adapters`: stored adapters, which are resident, and the cache's counters.
pub(crate) async fn list(State(state): State<Shared>, _: Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let stored = state.db.adapter_store().list()?;
        let stats = state.db.adapter_cache().map(|c| c.stats());
        let resident: HashMap<String, (usize, bool)> = stats
            .iter()
            .flat_map(|s| s.resident.iter())
            .map(|(id, bytes, held)| (id.to_string(), (*bytes, *held)))
            .collect();
        let adapters: Vec<Value> = stored
            .iter()
            .map(|a| {
                let mut v = adapter_view(a);
                v["resident"] = json!(resident.contains_key(&a.id));
                v["in_use"] = json!(resident.get(&a.id).is_some_and(|r| r.1));
                v
            })
            .collect();
        let cache = stats.map(|s| {
            json!({
                "budget_bytes": s.budget_bytes,
                "resident_bytes": s.resident_bytes,
                "hits": s.hits,
                "loads": s.loads,
                "evictions": s.evictions,
                "load_ms": s.load_time.as_secs_f64() * 1e3,
            })
        });
        Ok(Json(json!({ "adapters": adapters, "cache": cache })))
    })
    .await
}

fn cache(state: &Shared) -> ApiResult<&std::sync::Arc<provdb::inference::lora::AdapterCache>> {
    state
        .db
        .adapter_cache()
        .ok_or_else(|| ApiError::unavailable("no generator model is loaded, so no adapters"))
}

fn resolve(state: &Shared, id: &str) -> ApiResult<AdapterId> {
    Ok(state.db.adapter_store().resolve(id)?)
}

/// `POST /v1/adapters/{id}/load`: an admin warms the cache.
pub(crate) async fn load(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "loading adapters")?;
    blocking(move || {
        let id = resolve(&state, &id)?;
        let adapter = cache(&state)?.get(id)?;
        Ok(Json(json!({
            "id": id.to_string(),
            "resident": true,
            "bytes": adapter.byte_size(),
            "rank": adapter.rank(),
        })))
    })
    .await
}

/// `POST /v1/adapters/{id}/unload`: an admin frees its memory (refused while a request uses it).
pub(crate) async fn unload(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "unloading adapters")?;
    blocking(move || {
        let id = resolve(&state, &id)?;
        let was_resident = cache(&state)?.unload(id)?;
        Ok(Json(
            json!({ "id": id.to_string(), "resident": false, "was_resident": was_resident }),
        ))
    })
    .await
}

/// `GET /v1/models` (OpenAI's list).
pub(crate) async fn models(State(state): State<Shared>, _: Auth) -> ApiResult<Json<Value>> {
    let Some(base) = state.model_name.clone() else {
        return Ok(Json(json!({ "object": "list", "data": [] })));
    };
    blocking(move || {
        let model = |id: String, owner: Option<String>, created: u64| {
            json!({
                "id": id,
                "object": "model",
                "created": created,
                "owned_by": owner.unwrap_or_else(|| "provdb".into()),
            })
        };
        let mut data = vec![model(base.clone(), None, 0)];
        for adapter in state.db.adapter_store().list()? {
            data.push(model(
                format!("{base}:{}", adapter.id),
                adapter.owner.clone(),
                adapter.added_at,
            ));
        }
        Ok(Json(json!({ "object": "list", "data": data })))
    })
    .await
}
