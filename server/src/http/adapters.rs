//! Adapter routes (list, show, make public or private, load into the cache, unload) and
//! OpenAI's `GET /v1/models`: the base model and `base:ADAPTER_ID` for every adapter the
//! caller may see.
//!
//! Invariant: an adapter trained on a Datanet the caller may not read (and not made public by
//! that Datanet's owner) is answered exactly like an id that does not exist, 404, on every
//! route (`provdb::factory::AdapterAccess`); a public one shows no training details to such a
//! caller.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use provdb::KeyRole;
use provdb::factory::AdapterAccess;
use provdb::inference::lora::{AdapterId, AdapterInfo};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::ApiJson;
use crate::http::state::Shared;

/// Training details a caller who may not read the training Datanet does not see of a public
/// adapter: they name the Datanet and count and name its contributors.
const WITHHELD_TRAINING: [&str; 4] = ["datanet", "contributors", "records", "job_id"];

/// An adapter as the API shows it: without `source`, the path it was added from (a server
/// path is nobody's business outside the server).
pub(crate) fn adapter_view(info: &AdapterInfo) -> Value {
    let mut view = json!(info);
    if let Some(object) = view.as_object_mut() {
        object.remove("source");
    }
    view
}

/// [`adapter_view`] as a caller with `access` sees it, with `public`.
fn view_for(info: &AdapterInfo, access: AdapterAccess, public: bool) -> Value {
    let mut view = adapter_view(info);
    if access == AdapterAccess::Public
        && let Some(training) = view.get_mut("training").and_then(Value::as_object_mut)
    {
        for field in WITHHELD_TRAINING {
            training.remove(field);
        }
        training.insert("withheld".into(), json!(true));
    }
    view["public"] = json!(public);
    view
}

/// Whether the last visibility act on `info` made it public.
fn is_public(state: &Shared, info: &AdapterInfo) -> ApiResult<bool> {
    let id = AdapterId::parse(&info.id)?;
    Ok(state
        .db
        .store()
        .adapter_acts(&id.0)?
        .last()
        .is_some_and(|a| a.public))
}

/// `GET /v1/adapters`: the adapters the caller may see, which are resident, and the cache's
/// counters.
pub(crate) async fn list(State(state): State<Shared>, Auth(who): Auth) -> ApiResult<Json<Value>> {
    blocking(move || {
        let stored = state.db.visible_adapters(&who.caller())?;
        let stats = state.db.adapter_cache().map(|c| c.stats());
        let resident: HashMap<String, (usize, bool)> = stats
            .iter()
            .flat_map(|s| s.resident.iter())
            .map(|(id, bytes, held)| (id.to_string(), (*bytes, *held)))
            .collect();
        let mut adapters: Vec<Value> = Vec::with_capacity(stored.len());
        for (a, access) in &stored {
            let mut v = view_for(a, *access, is_public(&state, a)?);
            v["resident"] = json!(resident.contains_key(&a.id));
            v["in_use"] = json!(resident.get(&a.id).is_some_and(|r| r.1));
            adapters.push(v);
        }
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

fn resolve(state: &Shared, who: &provdb::Principal, id: &str) -> ApiResult<AdapterId> {
    let (info, _) = state.db.resolve_visible_adapter(&who.caller(), id)?;
    Ok(AdapterId::parse(&info.id)?)
}

/// `GET /v1/adapters/{id}`: one adapter the caller may see, with `acts` (who made it public or
/// private, and when) for an admin or the owner of its training Datanet.
pub(crate) async fn show(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let caller = who.caller();
        let (info, access) = state.db.resolve_visible_adapter(&caller, &id)?;
        let mut view = view_for(&info, access, is_public(&state, &info)?);
        if let Some(acts) = state.db.adapter_acts(&caller, &info.id)? {
            view["acts"] = acts_view(&acts);
        }
        Ok(Json(view))
    })
    .await
}

fn act_view(act: &provdb::storage::AdapterAct) -> Value {
    json!({"seq": act.seq, "at_ms": act.at_ms, "by": act.by.to_string(), "public": act.public})
}

fn acts_view(acts: &[provdb::storage::AdapterAct]) -> Value {
    acts.iter().map(act_view).collect()
}

/// `POST /v1/adapters/{id}/visibility` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisibilityBody {
    public: bool,
}

/// `POST /v1/adapters/{id}/visibility`: the owner of the adapter's training Datanet makes it
/// public (`{"public": true}`) or private again; the act is recorded with who and when.
pub(crate) async fn set_visibility(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VisibilityBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let caller = who.caller();
        let (info, _) = state.db.resolve_visible_adapter(&caller, &id)?;
        if info.training.is_some() && !state.db.may_set_adapter_visibility(&caller, &info)? {
            let datanet = info.training.as_ref().map_or("", |t| t.datanet.as_str());
            return Err(ApiError::forbidden(format!(
                "only the owner of datanet '{datanet}', which adapter {} trained on, may make \
                 it public or private",
                info.id
            )));
        }
        let act = state
            .db
            .set_adapter_public(&caller, &info.id, body.public)?;
        Ok(Json(json!({
            "id": info.id,
            "public": act.public,
            "act": act_view(&act),
        })))
    })
    .await
}

/// `POST /v1/adapters/{id}/load`: an admin warms the cache.
pub(crate) async fn load(
    State(state): State<Shared>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require(KeyRole::Admin, "loading adapters")?;
    blocking(move || {
        let id = resolve(&state, &auth.0, &id)?;
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
        let id = resolve(&state, &auth.0, &id)?;
        let was_resident = cache(&state)?.unload(id)?;
        Ok(Json(
            json!({ "id": id.to_string(), "resident": false, "was_resident": was_resident }),
        ))
    })
    .await
}

/// `GET /v1/models` (OpenAI's list): the base model and the adapters the caller may see.
pub(crate) async fn models(State(state): State<Shared>, Auth(who): Auth) -> ApiResult<Json<Value>> {
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
        for (adapter, _) in state.db.visible_adapters(&who.caller())? {
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
