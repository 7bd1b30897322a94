//! Checking an x402 payment against what this request costs, before anything touches the chain:
//! the requirements it echoes are ours (scheme, network, token, pay-to, amount), it is for this
//! resource, its authorization pays exactly the amount to the distributor inside its validity
//! window, and its signature recovers the account it says pays. The reasons are x402's own
//! codes (the `x402` package's `mechanisms/evm/constants.py`), plus `invalid_payment_resource`
//! and `invalid_exact_evm_asset_mismatch` for the two checks it leaves to the server.
//!
//! Invariant: a payment that passes names its payer by its signature, never by its text alone.

use std::borrow::Cow;

use provdb::Address;
use provdb_chain::{TokenDomain, TransferAuthorization, recover_authorizer};

use super::wire::{
    PaymentPayload, PaymentRequirements, SCHEME, X402_VERSION, parse_address, parse_decimal,
    parse_hex,
};

/// Seconds an authorization must still be valid for when it is checked (x402's margin).
const VALID_BEFORE_MARGIN_S: u64 = 6;

/// Why a payment is refused: x402's reason code and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: Cow<'static, str>,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// A payment whose fields and signature check out.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) authorization: TransferAuthorization,
    pub(crate) signature: Vec<u8>,
}

impl Verified {
    /// Who pays (the signer).
    pub(crate) fn payer(&self) -> Address {
        self.authorization.from
    }
}

fn same_address(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Checks `payment` against `expected` (this request's requirements) for `resource_url`, at
/// `now_s` (Unix seconds), with the token's EIP-712 `domain`.
pub(crate) fn check(
    payment: &PaymentPayload,
    expected: &PaymentRequirements,
    resource_url: &str,
    domain: &TokenDomain,
    now_s: u64,
) -> Result<Verified, Refusal> {
    let accepted = &payment.accepted;
    if payment.x402_version != X402_VERSION {
        return Err(Refusal::new(
            "invalid_x402_version",
            format!("x402 version {} is not served; use 2", payment.x402_version),
        ));
    }
    if accepted.scheme != SCHEME {
        return Err(Refusal::new(
            "unsupported_scheme",
            format!("scheme {:?} is not served; use \"exact\"", accepted.scheme),
        ));
    }
    if accepted.network != expected.network {
        return Err(Refusal::new(
            "network_mismatch",
            format!("paid on {}, not {}", accepted.network, expected.network),
        ));
    }
    if !same_address(&accepted.asset, &expected.asset) {
        return Err(Refusal::new(
            "invalid_exact_evm_asset_mismatch",
            format!("paid in {}, not in {}", accepted.asset, expected.asset),
        ));
    }
    let resource = payment.resource.as_ref().map(|r| r.url.as_str());
    if resource != Some(resource_url) {
        return Err(Refusal::new(
            "invalid_payment_resource",
            format!(
                "the payment is for {}, not {resource_url}",
                resource.unwrap_or("no resource")
            ),
        ));
    }
    let authorization = parse_authorization(payment)?;
    let pay_to = parse_address(&expected.pay_to, "payTo").map_err(invalid)?;
    if authorization.to != pay_to || !same_address(&accepted.pay_to, &expected.pay_to) {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_recipient_mismatch",
            format!("the payment goes to {}, not to {pay_to}", authorization.to),
        ));
    }
    let amount = parse_decimal(&expected.amount, "amount").map_err(invalid)?;
    if authorization.value != amount || accepted.amount != expected.amount {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_value_mismatch",
            format!(
                "the payment authorizes {} and this request costs {amount}",
                authorization.value
            ),
        ));
    }
    if authorization.valid_before < now_s.saturating_add(VALID_BEFORE_MARGIN_S) {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_valid_before",
            format!(
                "the authorization expired (valid before {}, now {now_s})",
                authorization.valid_before
            ),
        ));
    }
    if authorization.valid_after > now_s {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_authorization_valid_after",
            format!(
                "the authorization is not valid yet (valid after {})",
                authorization.valid_after
            ),
        ));
    }
    let signature = parse_hex(&payment.payload.signature, "signature", Some(65))
        .map_err(|message| Refusal::new("invalid_exact_evm_payload_signature", message))?;
    let signer = recover_authorizer(domain, &authorization, &signature)
        .map_err(|e| Refusal::new("invalid_exact_evm_payload_signature", e.to_string()))?;
    if signer != authorization.from {
        return Err(Refusal::new(
            "invalid_exact_evm_payload_signature",
            format!("the signature is {signer}'s, not {}'s", authorization.from),
        ));
    }
    Ok(Verified {
        authorization,
        signature,
    })
}

fn invalid(message: String) -> Refusal {
    Refusal::new("invalid_payload", message)
}

/// The authorization's fields, parsed.
fn parse_authorization(payment: &PaymentPayload) -> Result<TransferAuthorization, Refusal> {
    let text = &payment.payload.authorization;
    let time = |value: &str, field: &str| -> Result<u64, Refusal> {
        let parsed = parse_decimal(value, field).map_err(invalid)?;
        u64::try_from(parsed).map_err(|_| invalid(format!("{field} is too large")))
    };
    let nonce = parse_hex(&text.nonce, "nonce", Some(32)).map_err(invalid)?;
    let mut nonce_bytes = [0u8; 32];
    nonce_bytes.copy_from_slice(&nonce);
    Ok(TransferAuthorization {
        from: parse_address(&text.from, "from").map_err(invalid)?,
        to: parse_address(&text.to, "to").map_err(invalid)?,
        value: parse_decimal(&text.value, "value").map_err(invalid)?,
        valid_after: time(&text.valid_after, "validAfter")?,
        valid_before: time(&text.valid_before, "validBefore")?,
        nonce: nonce_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::x402::wire::{AuthorizationText, ExactPayload, ResourceInfo};

    // The reference vector (x402 2.25.0 with eth_account, and viem, agree on it): anvil's
    // account 0 authorizes 10,000 to `TO` on chain 31337, valid before 1,900,000,000.
    const FROM: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    const TO: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const TOKEN: &str = "0x5fbdb2315678afecb367f642afa3c3ac6f2e3b15";
    const SIGNATURE: &str = "0x532d9a00e26e9847cb2fa43c1900730929d8cf1e77ee6a9e880c395b81dcc2406f19b0d7e6820ad60a8e0effd10ee6447460328ed1e0cd6d3188f7090ef5105b1c";
    const URL: &str = "http://127.0.0.1:7878/v1/chat/completions";
    const NOW: u64 = 1_800_000_000;

    fn domain() -> TokenDomain {
        TokenDomain {
            name: "MockUSD".into(),
            version: "1".into(),
            chain_id: 31337,
            token: TOKEN.parse().unwrap(),
        }
    }

    fn requirements() -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: "eip155:31337".into(),
            asset: TOKEN.into(),
            amount: "10000".into(),
            pay_to: TO.to_lowercase(),
            max_timeout_seconds: 300,
            extra: serde_json::json!({"name": "MockUSD", "version": "1"}),
        }
    }

    fn payment() -> PaymentPayload {
        PaymentPayload {
            x402_version: 2,
            payload: ExactPayload {
                authorization: AuthorizationText {
                    from: FROM.into(),
                    to: TO.into(),
                    value: "10000".into(),
                    valid_after: "0".into(),
                    valid_before: "1900000000".into(),
                    nonce: format!("0x{}", "11".repeat(32)),
                },
                signature: SIGNATURE.into(),
            },
            accepted: requirements(),
            resource: Some(ResourceInfo {
                url: URL.into(),
                description: None,
                mime_type: None,
            }),
        }
    }

    fn refused(payment: &PaymentPayload, expected: &PaymentRequirements) -> String {
        check(payment, expected, URL, &domain(), NOW)
            .unwrap_err()
            .reason
            .into_owned()
    }

    #[test]
    fn the_reference_payment_verifies_and_names_its_signer() {
        let verified = check(&payment(), &requirements(), URL, &domain(), NOW).unwrap();
        assert_eq!(verified.payer(), FROM.parse::<Address>().unwrap());
        assert_eq!(verified.authorization.value, 10_000);
    }

    #[test]
    fn every_mismatch_is_refused_with_its_reason() {
        let expected = requirements();
        // A short amount: the request costs more than was signed for.
        let mut dearer = expected.clone();
        dearer.amount = "10001".into();
        let mut echoed = payment();
        echoed.accepted.amount = "10001".into();
        assert_eq!(
            refused(&echoed, &dearer),
            "invalid_exact_evm_payload_authorization_value_mismatch"
        );
        // Another token.
        let mut other_token = payment();
        other_token.accepted.asset = "0x0000000000000000000000000000000000000001".into();
        assert_eq!(
            refused(&other_token, &expected),
            "invalid_exact_evm_asset_mismatch"
        );
        // Another recipient, signed for (the text alone changed: the signature then fails
        // too, but the recipient is checked first).
        let mut elsewhere = payment();
        elsewhere.payload.authorization.to = FROM.into();
        assert_eq!(
            refused(&elsewhere, &expected),
            "invalid_exact_evm_payload_recipient_mismatch"
        );
        // Another resource.
        let mut other_resource = payment();
        other_resource.resource = Some(ResourceInfo {
            url: "http://127.0.0.1:7878/v1/other".into(),
            description: None,
            mime_type: None,
        });
        assert_eq!(
            refused(&other_resource, &expected),
            "invalid_payment_resource"
        );
        // Expired, and not yet valid.
        assert_eq!(
            check(&payment(), &expected, URL, &domain(), 1_900_000_000)
                .unwrap_err()
                .reason,
            "invalid_exact_evm_payload_authorization_valid_before"
        );
        let mut early = payment();
        early.payload.authorization.valid_after = (NOW + 60).to_string();
        assert_eq!(
            refused(&early, &expected),
            "invalid_exact_evm_payload_authorization_valid_after"
        );
        // A payer named who did not sign: the signature recovers someone else.
        let mut impostor = payment();
        impostor.payload.authorization.from = TO.into();
        assert_eq!(
            refused(&impostor, &expected),
            "invalid_exact_evm_payload_signature"
        );
        // A value changed after signing.
        let mut raised = payment();
        raised.payload.authorization.value = "10000".into();
        raised.payload.authorization.nonce = format!("0x{}", "12".repeat(32));
        assert_eq!(
            refused(&raised, &expected),
            "invalid_exact_evm_payload_signature"
        );
        // Malformed fields.
        let mut short = payment();
        short.payload.signature = "0x1234".into();
        assert_eq!(
            refused(&short, &expected),
            "invalid_exact_evm_payload_signature"
        );
        let mut bad_nonce = payment();
        bad_nonce.payload.authorization.nonce = "0x11".into();
        assert_eq!(refused(&bad_nonce, &expected), "invalid_payload");
        let mut v1 = payment();
        v1.x402_version = 1;
        assert_eq!(refused(&v1, &expected), "invalid_x402_version");
    }
}
