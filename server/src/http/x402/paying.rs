//! Who pays for a cited answer: an API key's account, or an x402 payment settled before the
//! answer. Decides between answering, a 401, and a 402 that says what to pay.
//!
//! Invariant: a request is answered as an account only when it holds that account's API key or
//! has paid with a signature of that account's key (its payment settled and credited first).

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use provdb::{AskRequest, Caller, KeyRole, Principal};

use super::resource_of;
use super::verify::{self, Refusal};
use super::wire::{PAYMENT_SIGNATURE, PaymentPayload, decode_header, parse_address};
use crate::http::error::{ApiError, ApiResult, blocking};
use crate::http::state::Shared;

/// The caller a cited answer is made for, and the x402 receipt to send with it.
pub(crate) struct Payer {
    pub(crate) who: Principal,
    /// The `PAYMENT-RESPONSE` header's value, when this request paid with x402.
    pub(crate) receipt: Option<String>,
}

/// The route x402 payments are for.
const ROUTE: &str = "/v1/chat/completions";

/// Who pays for `ask` (its caller not yet set): the API key's principal `key`, or the signer
/// of an x402 payment in `headers`, settled and credited by now. Without either: 401, or with
/// x402 on, 402 with what to pay.
pub(crate) async fn resolve(
    state: &Shared,
    key: Option<Principal>,
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    ask: &AskRequest,
) -> ApiResult<Payer> {
    let payment = headers.get(PAYMENT_SIGNATURE);
    let Some(x402) = state.x402.as_ref() else {
        if payment.is_some() {
            return Err(ApiError::bad_request(
                "this server takes no x402 payments (provdb serve --x402); send an API key",
            ));
        }
        let who = key.ok_or_else(no_key)?;
        return Ok(Payer { who, receipt: None });
    };
    let resource = resource_of(headers, ROUTE);
    let Some(payment) = payment else {
        let caller = key
            .as_ref()
            .map_or_else(Caller::anonymous, Principal::caller);
        if key.is_none() {
            // Unsigned requests are counted by the address they come from.
            let from = peer.map_or_else(|| "unknown".into(), |p| p.0.ip().to_string());
            state.rate.check(&format!("x402-ip:{from}"))?;
        }
        let bound = price(state, ask, caller).await?;
        return match key {
            Some(who) => {
                let (account, held) = state.db.account(&who.address)?;
                if bound > 0 && account.balance_wei.saturating_sub(held) < bound {
                    return Err(x402.challenge(
                        &resource,
                        bound,
                        "insufficient_funds",
                        &format!(
                            "the balance of {} is {} wei, short of this answer's {bound}",
                            who.address, account.balance_wei
                        ),
                    ));
                }
                Ok(Payer { who, receipt: None })
            }
            None if bound == 0 => Err(no_key()),
            None => Err(x402.challenge(&resource, bound, "payment_required", "Payment required")),
        };
    };
    let text = payment.to_str().unwrap_or_default();
    let payment: Result<PaymentPayload, String> = decode_header(text);
    // Priced as the account the payment names (its signature is checked below).
    let named = payment
        .as_ref()
        .ok()
        .and_then(|p| parse_address(&p.payload.authorization.from, "from").ok());
    let caller = named.map_or_else(Caller::anonymous, Caller::address);
    let bound = price(state, ask, caller).await?;
    let payment = payment.map_err(|message| {
        x402.refuse(&resource, bound, &Refusal::new("invalid_payload", message))
    })?;
    if bound == 0 {
        return Err(ApiError::bad_request(
            "this answer is free: send it with an API key and without a payment",
        ));
    }
    let requirements = x402.requirements(bound);
    let verified = verify::check(
        &payment,
        &requirements,
        &resource.url,
        &x402.domain,
        unix_now(),
    )
    .map_err(|refusal| x402.refuse(&resource, bound, &refusal))?;
    let payer = verified.payer();
    state.rate.check(&format!("x402:{payer}"))?;
    let receipt = x402
        .settle(state.db.clone(), &verified, &payment, &requirements)
        .await
        .map_err(|refusal| {
            x402.refuse(&resource, bound, &refusal).with_header(
                super::PAYMENT_RESPONSE,
                x402.failed_receipt(&refusal, payer),
            )
        })?;
    Ok(Payer {
        who: payer_principal(payer),
        receipt: Some(super::encode_header(&receipt)),
    })
}

/// The principal of an x402 payer: a reader acting as the address that signed.
fn payer_principal(payer: provdb::Address) -> Principal {
    Principal {
        key_id: format!("x402:{payer}"),
        address: payer,
        role: KeyRole::Reader,
    }
}

fn no_key() -> ApiError {
    ApiError::unauthorized("send an API key: Authorization: Bearer <key>")
}

/// `ask`'s price at its upper bound for `caller` (refused as the answer would be).
async fn price(state: &Shared, ask: &AskRequest, caller: Caller) -> ApiResult<u128> {
    let mut ask = ask.clone();
    ask.caller = caller;
    let state = state.clone();
    blocking(move || Ok(state.db.price_bound(&ask)?)).await
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
