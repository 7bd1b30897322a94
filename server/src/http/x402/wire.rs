//! x402 (version 2) on the wire, as the `x402` Python package (2.25.0) and `@x402/fetch`
//! (2.27.0) speak it: the `PAYMENT-REQUIRED` header of a 402 (what to pay), the
//! `PAYMENT-SIGNATURE` header of the retry (the signed EIP-3009 authorization) and the
//! `PAYMENT-RESPONSE` header of the answer (the settlement receipt). Each header is the
//! standard, padded base64 of camelCase JSON; amounts and times are decimal strings.
//!
//! Invariant: decoding never trusts a field it has not parsed: addresses, amounts, times, the
//! nonce and the signature are parsed here, and a malformed one is an error naming it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use provdb::Address;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The 402's header: what to pay.
pub(crate) const PAYMENT_REQUIRED: &str = "payment-required";
/// The retry's header: the payment.
pub(crate) const PAYMENT_SIGNATURE: &str = "payment-signature";
/// The answer's header: the receipt.
pub(crate) const PAYMENT_RESPONSE: &str = "payment-response";
/// The protocol version spoken.
pub(crate) const X402_VERSION: u32 = 2;
/// The one scheme served: a fixed amount, paid by an EIP-3009 authorization.
pub(crate) const SCHEME: &str = "exact";

/// The resource a payment is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceInfo {
    pub(crate) url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mime_type: Option<String>,
}

/// One way to pay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentRequirements {
    pub(crate) scheme: String,
    /// CAIP-2, `eip155:<chain id>`.
    pub(crate) network: String,
    /// The token's address.
    pub(crate) asset: String,
    /// In the token's smallest unit (decimal).
    pub(crate) amount: String,
    pub(crate) pay_to: String,
    pub(crate) max_timeout_seconds: u64,
    /// The token's EIP-712 `name` and `version`.
    #[serde(default)]
    pub(crate) extra: Value,
}

/// The body of `PAYMENT-REQUIRED`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentRequired {
    pub(crate) x402_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) resource: ResourceInfo,
    pub(crate) accepts: Vec<PaymentRequirements>,
}

/// EIP-3009's `TransferWithAuthorization`, as the payload carries it (strings).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthorizationText {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) value: String,
    pub(crate) valid_after: String,
    pub(crate) valid_before: String,
    pub(crate) nonce: String,
}

/// The `exact` scheme's payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ExactPayload {
    pub(crate) authorization: AuthorizationText,
    /// 0x-hex.
    pub(crate) signature: String,
}

/// The body of `PAYMENT-SIGNATURE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentPayload {
    pub(crate) x402_version: u32,
    pub(crate) payload: ExactPayload,
    /// The requirements the client chose, echoed.
    pub(crate) accepted: PaymentRequirements,
    #[serde(default)]
    pub(crate) resource: Option<ResourceInfo>,
}

/// The body of `PAYMENT-RESPONSE`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SettleResponse {
    pub(crate) success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payer: Option<String>,
    /// The settling transaction's hash ("" when none was mined).
    pub(crate) transaction: String,
    pub(crate) network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) amount: Option<String>,
}

/// The header value of `value`: base64 of its JSON.
pub(crate) fn encode_header(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    STANDARD.encode(json)
}

/// `T` from a header value, or why not.
pub(crate) fn decode_header<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the header is not base64: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("the header is not x402 JSON: {e}"))
}

/// An address of the payload, or which field is malformed.
pub(crate) fn parse_address(text: &str, field: &str) -> Result<Address, String> {
    text.parse()
        .map_err(|_| format!("{field} is not an address: {text:?}"))
}

/// A decimal amount or time of the payload, or which field is malformed.
pub(crate) fn parse_decimal(text: &str, field: &str) -> Result<u128, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{field} is not a decimal number: {text:?}"));
    }
    text.parse()
        .map_err(|_| format!("{field} is too large: {text:?}"))
}

/// 0x-hex bytes of the payload, of `len` bytes when given.
pub(crate) fn parse_hex(text: &str, field: &str, len: Option<usize>) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("{field} is not 0x-hex"))?;
    let bytes = hex::decode(digits).map_err(|_| format!("{field} is not 0x-hex"))?;
    match len {
        Some(len) if bytes.len() != len => {
            Err(format!("{field} has {} bytes, not {len}", bytes.len()))
        }
        _ => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload as the Python client sends it (x402 2.25.0), fields and all.
    const PAYLOAD: &str = r#"{"x402Version":2,"payload":{"authorization":{"from":"0x65053c413fF2b64bF732d1e69Ae0Ef37300d6927","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"10000","validAfter":"0","validBefore":"1796666039","nonce":"0x7ce61c0427cf81ca071e051de3ad7df536e9ac27e60725235df336c708177cc5"},"signature":"0xdbc3"},"accepted":{"scheme":"exact","network":"eip155:31337","asset":"0x5fbdb2315678AfECB367f642aFA3c3aC6f2e3B15","amount":"10000","payTo":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","maxTimeoutSeconds":300,"extra":{"name":"MockUSD","version":"1"}},"resource":{"url":"http://127.0.0.1:8080/v1/chat/completions"}}"#;

    #[test]
    fn a_client_payload_decodes_from_its_header() {
        let header = STANDARD.encode(PAYLOAD);
        let payload: PaymentPayload = decode_header(&header).unwrap();
        assert_eq!(payload.x402_version, 2);
        assert_eq!(payload.accepted.pay_to, payload.payload.authorization.to);
        assert_eq!(payload.accepted.max_timeout_seconds, 300);
        assert_eq!(payload.accepted.extra["name"], "MockUSD");
        assert_eq!(
            parse_decimal(&payload.payload.authorization.valid_before, "validBefore").unwrap(),
            1_796_666_039
        );
        let nonce = parse_hex(&payload.payload.authorization.nonce, "nonce", Some(32)).unwrap();
        assert_eq!(nonce[0], 0x7c);
    }

    #[test]
    fn requirements_encode_in_camel_case_and_round_trip() {
        let required = PaymentRequired {
            x402_version: X402_VERSION,
            error: Some("Payment required".into()),
            resource: ResourceInfo {
                url: "http://h/v1/chat/completions".into(),
                description: None,
                mime_type: Some("application/json".into()),
            },
            accepts: vec![PaymentRequirements {
                scheme: SCHEME.into(),
                network: "eip155:31337".into(),
                asset: "0x5fbdb2315678afecb367f642afa3c3ac6f2e3b15".into(),
                amount: "7".into(),
                pay_to: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8".into(),
                max_timeout_seconds: 300,
                extra: serde_json::json!({"name": "T", "version": "1"}),
            }],
        };
        let header = encode_header(&required);
        let json: Value = serde_json::from_slice(&STANDARD.decode(&header).unwrap()).unwrap();
        assert_eq!(json["x402Version"], 2);
        assert_eq!(json["accepts"][0]["payTo"], required.accepts[0].pay_to);
        assert_eq!(json["accepts"][0]["maxTimeoutSeconds"], 300);
        assert_eq!(json["resource"]["mimeType"], "application/json");
        assert!(json["resource"].get("description").is_none());
        let back: PaymentRequired = decode_header(&header).unwrap();
        assert_eq!(back.accepts, required.accepts);
    }

    #[test]
    fn malformed_headers_and_fields_are_named() {
        assert!(
            decode_header::<PaymentPayload>("%%%")
                .unwrap_err()
                .contains("base64")
        );
        let not_json = STANDARD.encode("{");
        assert!(
            decode_header::<PaymentPayload>(&not_json)
                .unwrap_err()
                .contains("JSON")
        );
        assert!(parse_decimal("-1", "value").unwrap_err().contains("value"));
        assert!(parse_decimal("", "value").is_err());
        assert!(
            parse_decimal(&"9".repeat(40), "value")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_hex("0x12", "nonce", Some(32))
                .unwrap_err()
                .contains("1 bytes")
        );
        assert!(parse_hex("12", "nonce", None).is_err());
        assert!(parse_address("0x12", "from").is_err());
    }
}
