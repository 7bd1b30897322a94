//! An outside x402 facilitator (`provdb serve --x402-facilitator URL`), spoken to as the `x402`
//! packages' `HTTPFacilitatorClient` does: `GET /supported` once at start, then per payment
//! `POST /verify` and `POST /settle` with `{x402Version, paymentPayload, paymentRequirements}`.
//!
//! Invariant: neither answer is taken on trust. A payment reaches the facilitator only after
//! provdb's own checks passed (`verify.rs`, the nonce unused on chain), and its settlement is
//! credited only once the transaction it names shows the token moving exactly the authorized
//! amount from the payer to the distributor
//! ([`provdb_chain::credit_settled_authorization`]). A facilitator that says "settled" without
//! doing so gets nothing credited and nothing answered.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::verify::{Refusal, Verified};
use super::wire::{PaymentPayload, PaymentRequirements, X402_VERSION};

/// How long one call to the facilitator may take (a settlement waits for its transaction).
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyResponse {
    is_valid: bool,
    #[serde(default)]
    invalid_reason: Option<String>,
    #[serde(default)]
    invalid_message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettleResponse {
    success: bool,
    #[serde(default)]
    error_reason: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    transaction: String,
}

#[derive(Deserialize)]
struct SupportedKind {
    #[serde(rename = "x402Version")]
    version: u32,
    scheme: String,
    network: String,
}

#[derive(Deserialize)]
struct Supported {
    kinds: Vec<SupportedKind>,
}

fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(TIMEOUT).build()
}

fn endpoint(url: &str, route: &str) -> String {
    format!("{}/{route}", url.trim_end_matches('/'))
}

/// Checks that the facilitator at `url` settles x402 version 2 `scheme` payments on `network`.
pub(crate) async fn check_supported(url: &str, scheme: &str, network: &str) -> anyhow::Result<()> {
    let supported: Supported = client()?
        .get(endpoint(url, "supported"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| anyhow::anyhow!("the x402 facilitator {url} does not answer: {e}"))?
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("the x402 facilitator {url}'s /supported: {e}"))?;
    let served = supported
        .kinds
        .iter()
        .any(|k| k.version == X402_VERSION && k.scheme == scheme && k.network == network);
    anyhow::ensure!(
        served,
        "the x402 facilitator {url} does not settle x402 v{X402_VERSION} {scheme:?} payments on \
         {network} (its GET /supported)"
    );
    Ok(())
}

async fn call<T: for<'de> Deserialize<'de>>(
    url: &str,
    route: &str,
    body: &Value,
) -> Result<T, Refusal> {
    let unexpected = |e: &dyn std::fmt::Display| {
        Refusal::new(
            "unexpected_settle_error",
            format!("the x402 facilitator's /{route}: {e}; nothing was charged"),
        )
    };
    let response = client()
        .map_err(|e| unexpected(&e))?
        .post(endpoint(url, route))
        .json(body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unexpected(&e))?;
    response.json().await.map_err(|e| unexpected(&e))
}

/// Has the facilitator at `url` verify and settle `payment` (whose authorization `verified`
/// holds, checked) against `requirements`; the transaction it names (to be checked on chain
/// before anything is credited). The authorization's addresses are sent in EIP-55 case, as
/// facilitators expect them (the signature covers the addresses, not their case).
pub(crate) async fn settle(
    url: &str,
    payment: &PaymentPayload,
    verified: &Verified,
    requirements: &PaymentRequirements,
) -> Result<String, Refusal> {
    let mut payment = payment.clone();
    let authorization = &mut payment.payload.authorization;
    authorization.from = provdb_chain::checksummed(verified.authorization.from);
    authorization.to = provdb_chain::checksummed(verified.authorization.to);
    let body = json!({
        "x402Version": X402_VERSION,
        "paymentPayload": payment,
        "paymentRequirements": requirements,
    });
    let verified: VerifyResponse = call(url, "verify", &body).await?;
    if !verified.is_valid {
        return Err(refusal(
            verified.invalid_reason,
            verified.invalid_message,
            "the x402 facilitator refused the payment",
        ));
    }
    let settled: SettleResponse = call(url, "settle", &body).await?;
    if !settled.success || settled.transaction.is_empty() {
        return Err(refusal(
            settled.error_reason,
            settled.error_message,
            "the x402 facilitator could not settle the payment",
        ));
    }
    Ok(settled.transaction)
}

fn refusal(reason: Option<String>, message: Option<String>, what: &str) -> Refusal {
    // A reason code as x402 spells them (snake case); anything else is not passed on.
    let reason = reason
        .filter(|r| {
            r.len() <= 80
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .unwrap_or_else(|| "unexpected_settle_error".into());
    let detail = message.map_or_else(|| reason.clone(), |m| format!("{reason}: {m}"));
    Refusal::new(reason, format!("{what} ({detail}); nothing was charged"))
}
