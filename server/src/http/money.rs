//! Money routes: prices (read by anyone, set by their owners), the caller's prepaid account,
//! refunds, and admins' off-chain credits. Every rule is the root crate's (`Db::set_price`,
//! `Db::credit`, `Db::refund`), so the HTTP API, the CLI and the embedded API agree.

use axum::Json;
use axum::extract::{Path, State};
use provdb::{Address, PriceScope};
use serde::Deserialize;
use serde_json::Value;

use crate::http::auth::Auth;
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::state::Shared;
use crate::views::{AccountView, PriceView};

/// An amount of wei in JSON: a decimal string, or a whole number.
pub(crate) fn wei_of(field: &str, value: &Value) -> ApiResult<u128> {
    let bad = || ApiError::bad_request(format!("{field} must be whole wei, got {value}"));
    match value {
        Value::String(s) => s.parse().map_err(|_| bad()),
        Value::Number(n) => n.as_u64().map(u128::from).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// `PUT /v1/prices/...` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceBody {
    per_answer_wei: Option<Value>,
    per_1k_tokens_wei: Option<Value>,
}

impl PriceBody {
    fn amounts(&self) -> ApiResult<(u128, u128)> {
        let of =
            |field: &str, value: &Option<Value>| value.as_ref().map_or(Ok(0), |v| wei_of(field, v));
        Ok((
            of("per_answer_wei", &self.per_answer_wei)?,
            of("per_1k_tokens_wei", &self.per_1k_tokens_wei)?,
        ))
    }
}

/// `GET /v1/prices`: every price the caller may see (anything unset is free).
pub(crate) async fn list(
    State(state): State<Shared>,
    Auth(who): Auth,
) -> ApiResult<Json<Vec<PriceView>>> {
    blocking(move || {
        let prices = state.db.prices_for(&who.caller())?;
        let views = prices
            .iter()
            .map(|p| PriceView::new(&state.db, p))
            .collect::<provdb::Result<Vec<_>>>()?;
        Ok(Json(views))
    })
    .await
}

/// What a `PUT /v1/prices/{kind}/{name}` prices.
enum Target {
    Datanet(String),
    Model(String),
    Adapter(String),
}

async fn set(
    state: Shared,
    who: provdb::Principal,
    target: Target,
    body: PriceBody,
) -> ApiResult<Json<PriceView>> {
    let (per_answer, per_1k) = body.amounts()?;
    blocking(move || {
        let caller = who.caller();
        let scope = match target {
            Target::Datanet(name) => {
                state.db.datanet_role(&who, &name)?;
                PriceScope::Datanet(state.db.datanet_info(&name)?.id)
            }
            Target::Model(name) => PriceScope::Model(name),
            Target::Adapter(spec) => PriceScope::Adapter(state.db.adapter_id_for(&caller, &spec)?),
        };
        let price = state.db.set_price(&caller, scope, per_answer, per_1k)?;
        Ok(Json(PriceView::new(&state.db, &price)?))
    })
    .await
}

/// `PUT /v1/prices/datanets/{name}`: the Datanet's owner (or an admin).
pub(crate) async fn set_datanet(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> ApiResult<Json<PriceView>> {
    set(state, who, Target::Datanet(name), body).await
}

/// `PUT /v1/prices/models/{name}`: an admin.
pub(crate) async fn set_model(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> ApiResult<Json<PriceView>> {
    set(state, who, Target::Model(name), body).await
}

/// `PUT /v1/prices/adapters/{id}`: the adapter's owner (or an admin).
pub(crate) async fn set_adapter(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> ApiResult<Json<PriceView>> {
    set(state, who, Target::Adapter(id), body).await
}

/// `GET /v1/account` and `POST /v1/account/refund` query: an admin may name another account.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountQuery {
    address: Option<String>,
}

/// An address typed in a path or query.
fn address_of(text: &str) -> ApiResult<Address> {
    text.parse()
        .map_err(|e: provdb::storage::StorageError| ApiError::bad_request(e.to_string()))
}

fn account_of(who: &provdb::Principal, query: &AccountQuery) -> ApiResult<Address> {
    let named = query.address.as_deref().map(address_of).transpose()?;
    match named {
        Some(address) if address != who.address && !who.caller().is_admin() => Err(
            ApiError::forbidden("only an admin may read or refund another account"),
        ),
        Some(address) => Ok(address),
        None => Ok(who.address),
    }
}

/// `GET /v1/account`: the caller's balance, what its answers in flight hold, its credits and
/// charges.
pub(crate) async fn show(
    State(state): State<Shared>,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<AccountQuery>,
) -> ApiResult<Json<AccountView>> {
    let address = account_of(&who, &query)?;
    blocking(move || Ok(Json(AccountView::of(&state.db, address)?))).await
}

/// `POST /v1/account/refund`: the whole balance becomes a payout of role `refund`, claimed
/// after the next epoch.
pub(crate) async fn refund(
    State(state): State<Shared>,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<AccountQuery>,
) -> ApiResult<Json<AccountView>> {
    let address = account_of(&who, &query)?;
    blocking(move || {
        state.db.refund(&who.caller(), address)?;
        Ok(Json(AccountView::of(&state.db, address)?))
    })
    .await
}

/// `POST /v1/accounts/{address}/credits` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreditBody {
    amount_wei: Value,
    reason: String,
}

/// `POST /v1/accounts/{address}/credits`: an admin's off-chain credit, with its reason.
pub(crate) async fn credit(
    State(state): State<Shared>,
    Auth(who): Auth,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<CreditBody>,
) -> ApiResult<Json<AccountView>> {
    let address = address_of(&address)?;
    let amount = wei_of("amount_wei", &body.amount_wei)?;
    blocking(move || {
        state
            .db
            .credit(&who.caller(), address, amount, &body.reason)?;
        Ok(Json(AccountView::of(&state.db, address)?))
    })
    .await
}
