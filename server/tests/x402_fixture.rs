//! An x402 setup on a real anvil, shared by the x402 tests and the crash matrix: an EIP-3009
//! token (the test-only `chain/contracts/test/TestToken3009.sol`) deployed with cast and minted
//! to payers, the distributor deployed for it, a priced Datanet, `provdb serve --x402`, and
//! payments built and signed here (the EIP-712 digest from the chain crate, the signature by
//! `cast wallet sign`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use provdb_chain::{TokenDomain, TransferAuthorization, authorization_digest};
use serde_json::{Value, json};

use crate::anvil::*;
use crate::common::*;
use crate::served::*;

/// The Datanet's price per answer, in the token's smallest unit.
pub(crate) const PRICE: u128 = 5_000;

/// Deploys `TestToken3009(name, version)` (the test-only EIP-3009 token) from anvil's account
/// 0; its address.
pub(crate) fn deploy_token(anvil: &Anvil, name: &str, version: &str) -> String {
    create_test_contract(
        anvil,
        "TestToken3009",
        &["constructor(string,string)", name, version],
    )
}

/// A database with a priced Datanet `d`, the distributor deployed for a new EIP-3009 token, and
/// an admin's API key.
pub(crate) struct Setup {
    pub(crate) anvil: Anvil,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) data: std::path::PathBuf,
    pub(crate) token: String,
    pub(crate) distributor: String,
    /// An admin's API key (reads the ledger's state).
    pub(crate) admin: String,
}

/// Mints `amount` of the token to `account`.
pub(crate) fn mint(anvil: &Anvil, token: &str, account: &str, amount: u128) {
    ok(anvil.cast(&[
        "send",
        token,
        "mint(address,uint256)",
        account,
        &amount.to_string(),
        "--private-key",
        &anvil.keys[0],
    ]));
}

/// The setup, with 1,000,000 of the token minted to each of the anvil accounts `payers`.
pub(crate) fn setup(payers: &[usize]) -> Setup {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let token = deploy_token(&anvil, "provdb test dollar", "1");
    for payer in payers {
        mint(&anvil, &token, &anvil.accounts[*payer], 1_000_000);
    }
    let deployed = deploy_for_token(&data, &anvil, &token);
    let distributor = deployed["distributor"].as_str().unwrap().to_string();
    ok(provdb(&data, &["datanet", "create", "d"]));
    ingest(
        &data,
        dir.path(),
        "d",
        &[
            "The boundary layer separates behind the shock when the pressure rises.",
            "Transition to turbulence moves upstream as the Reynolds number grows.",
        ],
    );
    ok(provdb(
        &data,
        &[
            "price",
            "set",
            "--datanet",
            "d",
            "--per-answer",
            &PRICE.to_string(),
        ],
    ));
    let admin = make_key(&data, &anvil.accounts[0], "admin");
    Setup {
        anvil,
        _dir: dir,
        data,
        token,
        distributor,
        admin,
    }
}

impl Setup {
    /// `provdb serve --x402`, settling with anvil's key 9.
    pub(crate) fn serve(&self) -> Served {
        Served::start(
            &self.data,
            &["--x402", "--x402-key-file", &key_file(&self.anvil.keys[9])],
        )
    }
}

pub(crate) fn ask_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "What happens behind the shock?"}],
        "datanets": ["d"],
        "attribution": "loo",
        "max_tokens": 8,
    })
}

pub(crate) fn decode(header: &str) -> Value {
    serde_json::from_slice(&STANDARD.decode(header).unwrap()).unwrap()
}

/// Sends `ask_body` with `header` as the payment: (status, body, requirements, receipt).
pub(crate) fn pay(
    served: &Served,
    model: &str,
    header: &str,
) -> (u16, Value, Option<Value>, Option<Value>) {
    let response = served
        .request("POST", "/v1/chat/completions", None)
        .header("PAYMENT-SIGNATURE", header)
        .json(&ask_body(model))
        .send()
        .unwrap();
    let get = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|h| decode(h.to_str().unwrap()))
    };
    let (required, receipt) = (get("payment-required"), get("payment-response"));
    let (status, body) = read(response);
    (status, body, required, receipt)
}

/// An unpaid request's 402: (its requirements header, decoded).
pub(crate) fn challenge(served: &Served, model: &str) -> Value {
    let response = served
        .request("POST", "/v1/chat/completions", None)
        .json(&ask_body(model))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 402);
    let header = response.headers()["payment-required"].to_str().unwrap();
    decode(header)
}

/// What a payment may get wrong.
#[derive(Clone)]
pub(crate) struct Payment {
    /// Index of the anvil key that signs.
    pub(crate) signer: usize,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) value: u128,
    pub(crate) valid_before: u64,
    pub(crate) nonce: [u8; 32],
    pub(crate) resource: String,
    pub(crate) accepted: Value,
}

pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `PAYMENT-SIGNATURE` header of `payment`, signed by its signer with cast.
pub(crate) fn header_of(anvil: &Anvil, payment: &Payment, domain: &TokenDomain) -> String {
    let auth = TransferAuthorization {
        from: address(&payment.from),
        to: address(&payment.to),
        value: payment.value,
        valid_after: 0,
        valid_before: payment.valid_before,
        nonce: payment.nonce,
    };
    let digest = authorization_digest(domain, &auth);
    let signature = anvil.cast_offline(&[
        "wallet",
        "sign",
        "--no-hash",
        "--private-key",
        &anvil.keys[payment.signer],
        &format!("0x{}", hex::encode(digest)),
    ]);
    let body = json!({
        "x402Version": 2,
        "payload": {
            "authorization": {
                "from": payment.from,
                "to": payment.to,
                "value": payment.value.to_string(),
                "validAfter": "0",
                "validBefore": payment.valid_before.to_string(),
                "nonce": format!("0x{}", hex::encode(payment.nonce)),
            },
            "signature": signature.trim(),
        },
        "accepted": payment.accepted,
        "resource": {"url": payment.resource},
    });
    STANDARD.encode(body.to_string())
}
