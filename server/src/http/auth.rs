//! Authentication: the [`Auth`] extractor turns `Authorization: Bearer KEY` into the key's
//! [`Principal`] (or 401), counts the request against the key's rate (or 429), and offers the
//! role checks routes call. [`MaybeAuth`] lets a route go on without a key (x402 pays).

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use provdb::{DatanetRole, KeyRole, Principal};
use serde_json::{Value, json};

use crate::http::error::{ApiError, ApiResult};
use crate::http::state::Shared;

/// The authenticated caller of a route.
pub(crate) struct Auth(pub(crate) Principal);

impl FromRequestParts<Shared> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("send an API key: Authorization: Bearer <key>")
            })?;
        // One point read of a small column family: cheap enough to do on the async thread.
        let principal = state
            .db
            .authenticate(token)?
            .ok_or_else(|| ApiError::unauthorized("invalid or revoked API key"))?;
        state.rate.check(&principal.key_id)?;
        Ok(Self(principal))
    }
}

/// The caller of a route that may also be paid without a key (x402): its key's principal, or
/// `None` when the request sends no `Authorization` header (a wrong key is still 401).
pub(crate) struct MaybeAuth(pub(crate) Option<Principal>);

impl FromRequestParts<Shared> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ApiResult<Self> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Self(None));
        }
        Auth::from_request_parts(parts, state)
            .await
            .map(|Auth(principal)| Self(Some(principal)))
    }
}

impl Auth {
    /// 403 unless the key's role is at least `role`.
    pub(crate) fn require(&self, role: KeyRole, to: &str) -> ApiResult<()> {
        if self.0.has(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{to} needs the {} role; this key is a {}",
                role.as_str(),
                self.0.role.as_str()
            )))
        }
    }
}

/// 403 unless the standing on a Datanet is at least `role`.
pub(crate) fn require_on(have: DatanetRole, role: DatanetRole, to: &str) -> ApiResult<()> {
    if have >= role {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{to} needs to be {} of this datanet; you are a {}",
            role.as_str(),
            have.as_str()
        )))
    }
}

/// `GET /v1/me`.
pub(crate) async fn me(Auth(principal): Auth) -> Json<Value> {
    Json(json!({
        "address": principal.address.to_string(),
        "role": principal.role.as_str(),
        "key_id": principal.key_id,
    }))
}
