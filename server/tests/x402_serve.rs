//! x402 against `provdb serve --x402` on a real anvil, with the real SmolLM2: the official
//! Python client (PyPI `x402`, scripts/x402-client.sh) and TypeScript client (npm `@x402/fetch`,
//! scripts/x402-ts-client.sh) each pay a cited answer with no API key and get it with its
//! receipt; then every bad payment, built and signed here (the EIP-712 digest
//! from the chain crate, the signature by `cast wallet sign`), is refused with 402 and its
//! x402 reason: a replayed nonce, an expired window, a short amount, a wrong token, a wrong
//! recipient, a signature of another key, a payload for another resource, and a settlement the
//! chain reverts. A refused payment answers nothing and writes nothing: the ledger, the answers
//! and the token balances are unchanged.

use provdb_chain::TokenDomain;
use serde_json::{Value, json};

use crate::anvil::*;
use crate::common::*;
use crate::served::*;
use crate::x402_fixture::*;

/// The ledger's entry count and head, and `account`'s state, read as the admin.
fn ledger_state(setup: &Setup, served: &Served, account: &str) -> (Value, Value, Value) {
    let (_, verified) = served.call("GET", "/v1/ledger/verify", Some(&setup.admin), None);
    assert_eq!(verified["ok"], true, "{verified}");
    let path = format!("/v1/account?address={account}");
    let (_, state) = served.call("GET", &path, Some(&setup.admin), None);
    (
        verified["entries"].clone(),
        verified["head"].clone(),
        state["credited_wei"].clone(),
    )
}

#[test]
fn the_official_python_and_typescript_clients_pay_a_cited_answer_with_no_key() {
    let (payer_index, ts_payer_index) = (2, 3);
    let setup = setup(&[payer_index, ts_payer_index]);
    let served = setup.serve();
    let payer = setup.anvil.accounts[payer_index].clone();
    let model = base_model(&served, &setup.admin);
    let required = challenge(&served, &model);
    let accepts = &required["accepts"][0];
    assert_eq!(required["x402Version"], 2, "{required}");
    assert_eq!(required["error"], "payment_required");
    assert_eq!(accepts["scheme"], "exact");
    assert_eq!(accepts["network"], "eip155:31337");
    assert_eq!(accepts["amount"], PRICE.to_string());
    assert!(
        accepts["asset"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&setup.token)
    );
    assert!(
        accepts["payTo"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&setup.distributor)
    );
    assert!(accepts["extra"]["name"].is_string() && accepts["extra"]["version"].is_string());

    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/x402-client.sh"))
        .args(["d", "What happens behind the shock?", "--max-tokens", "8"])
        .env("PROVDB_URL", &served.url)
        .env("X402_PRIVATE_KEY", &setup.anvil.keys[payer_index])
        .env("PROVDB_MODEL", &model)
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| {
        panic!("{e}: {} {}", stdout(&out), stderr(&out));
    });
    assert!(out.status.success(), "{report} {}", stderr(&out));
    assert_eq!(report["unpaid_status"], 402);
    assert_eq!(report["status"], 200, "{report}");
    let receipt = &report["receipt"];
    assert_eq!(receipt["success"], true, "{report}");
    assert_eq!(receipt["network"], "eip155:31337");
    assert!(
        receipt["payer"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&payer)
    );
    let tx = receipt["transaction"].as_str().unwrap();
    assert_eq!(tx.len(), 66, "{receipt}");
    assert_eq!(report["fee_wei"], PRICE.to_string(), "{report}");
    // Paid by measured use (leave-one-out): the Datanet's contributor is paid.
    let contributor_paid = report["split"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["role"] == "contributor" && s["amount_wei"].as_str().unwrap() != "0");
    assert!(contributor_paid, "{report}");

    // cast reads the settlement: the token moved into the distributor, as a deposit for the
    // payer; the payer's account paid exactly the fee, and the Datanet's contributors and
    // owner are owed it.
    let mined = setup.anvil.cast_ok(&["receipt", tx, "status"]);
    assert!(mined == "true" || mined.starts_with('1'), "{mined}");
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
        PRICE
    );
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &payer),
        1_000_000 - PRICE
    );
    let deposits = chain_deposits(&setup.anvil, &setup.distributor);
    assert_eq!(deposits.len(), 1, "one settlement, one deposit");
    assert!(deposits[0].account.eq_ignore_ascii_case(&payer));
    assert_eq!(deposits[0].amount, PRICE);
    let split: u128 = report["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(
        split, PRICE,
        "the contributors and owner are paid the fee: {report}"
    );

    // The TypeScript client (@x402/fetch) pays the same way, from another wallet.
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/x402-ts-client.sh"))
        .args(["d", "What happens behind the shock?", "8"])
        .env("PROVDB_URL", &served.url)
        .env("X402_PRIVATE_KEY", &setup.anvil.keys[ts_payer_index])
        .env("PROVDB_MODEL", &model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    let ts: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(ts["receipt"]["success"], true, "{ts}");
    assert_eq!(ts["fee_wei"], PRICE.to_string(), "{ts}");
    assert_eq!(chain_deposits(&setup.anvil, &setup.distributor).len(), 2);

    drop(served);
    let account = json(&ok(provdb(
        &setup.data,
        &["account", "show", &payer, "--json"],
    )));
    assert_eq!(account["credited_wei"], PRICE.to_string(), "{account}");
    assert_eq!(account["balance_wei"], "0", "{account}");
    // A sync later credits nothing twice.
    let operator = key_file(&setup.anvil.keys[0]);
    ok(chain(
        &setup.data,
        &setup.anvil,
        &["sync", "--key-file", &operator],
    ));
    let deposits = chain_deposits(&setup.anvil, &setup.distributor);
    assert_eq!(check_credited_once(&setup.data, &deposits), 2);
}

#[test]
fn every_bad_payment_is_refused_with_its_reason_and_changes_nothing() {
    let payer_index = 2;
    let setup = setup(&[payer_index]);
    let served = setup.serve();
    let payer = setup.anvil.accounts[payer_index].clone();
    let poor = setup.anvil.accounts[4].clone(); // holds no tokens
    let model = base_model(&served, &setup.admin);
    let required = challenge(&served, &model);
    let accepted = required["accepts"][0].clone();
    let domain = TokenDomain {
        name: accepted["extra"]["name"].as_str().unwrap().into(),
        version: accepted["extra"]["version"].as_str().unwrap().into(),
        chain_id: 31337,
        token: address(&setup.token),
    };
    let good = Payment {
        signer: payer_index,
        from: payer.clone(),
        to: setup.distributor.clone(),
        value: PRICE,
        valid_before: now_s() + 300,
        nonce: [7; 32],
        resource: required["resource"]["url"].as_str().unwrap().into(),
        accepted: accepted.clone(),
    };
    let before = (
        ledger_state(&setup, &served, &payer),
        token_balance(&setup.anvil, &setup.token, &payer),
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
    );
    let refused = |payment: &Payment, reason: &str| {
        let (status, body, required, receipt) =
            pay(&served, &model, &header_of(&setup.anvil, payment, &domain));
        assert_eq!(status, 402, "{reason}: {body}");
        let required = required.unwrap_or_else(|| panic!("{reason}: no requirements: {body}"));
        assert_eq!(required["error"], reason, "{body}");
        assert!(body["choices"].is_null(), "{reason}: answered: {body}");
        let now = (
            ledger_state(&setup, &served, &payer),
            token_balance(&setup.anvil, &setup.token, &payer),
            token_balance(&setup.anvil, &setup.token, &setup.distributor),
        );
        assert_eq!(now, before, "{reason}: something changed");
        receipt
    };

    let mut expired = good.clone();
    expired.valid_before = now_s().saturating_sub(10);
    refused(
        &expired,
        "invalid_exact_evm_payload_authorization_valid_before",
    );
    let mut short = good.clone();
    short.value = PRICE - 1;
    short.accepted["amount"] = json!((PRICE - 1).to_string());
    refused(
        &short,
        "invalid_exact_evm_payload_authorization_value_mismatch",
    );
    let mut wrong_token = good.clone();
    wrong_token.accepted["asset"] = json!(setup.anvil.accounts[8]);
    refused(&wrong_token, "invalid_exact_evm_asset_mismatch");
    let mut wrong_recipient = good.clone();
    wrong_recipient.to = setup.anvil.accounts[5].clone();
    refused(
        &wrong_recipient,
        "invalid_exact_evm_payload_recipient_mismatch",
    );
    let mut another_key = good.clone();
    another_key.signer = 3;
    refused(&another_key, "invalid_exact_evm_payload_signature");
    let mut elsewhere = good.clone();
    elsewhere.resource = "http://127.0.0.1:1/v1/chat/completions".into();
    refused(&elsewhere, "invalid_payment_resource");
    // Signed by an account without the tokens: the chain reverts the settlement; the failed
    // receipt names it.
    let mut unfunded = good.clone();
    unfunded.from = poor;
    unfunded.signer = 4;
    let receipt = refused(&unfunded, "invalid_exact_evm_insufficient_balance")
        .expect("a failed settlement's receipt");
    assert_eq!(receipt["success"], false, "{receipt}");
    let malformed = pay(&served, &model, "not base64 %%");
    assert_eq!(malformed.0, 402);
    assert_eq!(malformed.2.unwrap()["error"], "invalid_payload");

    // The good payment is answered once; the same payment again is a replay.
    let (status, body, _, receipt) = pay(&served, &model, &header_of(&setup.anvil, &good, &domain));
    assert_eq!(status, 200, "{body}");
    assert_eq!(receipt.unwrap()["success"], true);
    let after = (
        ledger_state(&setup, &served, &payer),
        token_balance(&setup.anvil, &setup.token, &payer),
    );
    let (status, body, required, _) =
        pay(&served, &model, &header_of(&setup.anvil, &good, &domain));
    assert_eq!(status, 402, "{body}");
    assert_eq!(
        required.unwrap()["error"],
        "invalid_exact_evm_nonce_already_used"
    );
    assert_eq!(
        (
            ledger_state(&setup, &served, &payer),
            token_balance(&setup.anvil, &setup.token, &payer)
        ),
        after,
        "a replay changes nothing"
    );
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
        PRICE
    );
}
