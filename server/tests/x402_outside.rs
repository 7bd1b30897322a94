//! x402 settled by an outside facilitator (`provdb serve --x402-facilitator URL`) on a real
//! anvil: the official `x402` package's own facilitator (scripts/x402-facilitator.sh) verifies
//! and settles, sending the token's `transferWithAuthorization` itself; provdb checks the
//! transaction on chain and credits the plain transfer to the payer (`creditTransfer`) before
//! answering. The official Python client pays through it.
//!
//! The attacks: a facilitator that says "settled" naming a transaction that moved nothing for
//! this payment (nothing is credited or answered), a replayed payload (refused before the
//! facilitator is asked), a key that is not the operator's (serve refuses to start); and a
//! payment the facilitator settled while provdb never credited it (killed in between): the
//! next `chain sync` credits it to the payer, once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use provdb_chain::TokenDomain;
use serde_json::{Value, json};

use crate::anvil::*;
use crate::common::*;
use crate::served::*;
use crate::x402_fixture::*;

/// The official facilitator, signing with anvil's key `signer`; killed on drop.
struct Facilitator {
    child: Child,
    url: String,
}

impl Facilitator {
    fn start(anvil: &Anvil, signer: usize) -> Self {
        let mut child = Command::new("bash")
            .arg(repo_root().join("scripts/x402-facilitator.sh"))
            .args([
                "--rpc",
                &anvil.url,
                "--network",
                "eip155:31337",
                "--port",
                "0",
            ])
            .env("X402_FACILITATOR_KEY", &anvil.keys[signer])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the facilitator said {line:?}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Facilitator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A facilitator that supports everything, finds every payment valid and says each settled
/// in `transaction`; serves until the process ends.
fn lying_facilitator(transaction: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = if head.starts_with("GET /supported") {
                json!({"kinds": [{"x402Version": 2, "scheme": "exact", "network": "eip155:31337"}]})
            } else if head.starts_with("POST /verify") {
                json!({"isValid": true})
            } else {
                json!({"success": true, "transaction": transaction, "network": "eip155:31337"})
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

fn serve_with(setup: &Setup, key: usize, facilitator: &str) -> Served {
    Served::start(
        &setup.data,
        &[
            "--x402",
            "--x402-key-file",
            &key_file(&setup.anvil.keys[key]),
            "--x402-facilitator",
            facilitator,
        ],
    )
}

fn credited(setup: &Setup, account: &str) -> u128 {
    let shown = json(&ok(provdb(
        &setup.data,
        &["account", "show", account, "--json"],
    )));
    shown["credited_wei"].as_str().unwrap().parse().unwrap()
}

fn total_deposited(setup: &Setup) -> u128 {
    setup
        .anvil
        .read_u128(&setup.distributor, "totalDeposited()(uint128)", &[])
}

/// A payment of `PRICE` by anvil's account `signer` for `served`'s 402, with `nonce`.
fn payment(
    setup: &Setup,
    served: &Served,
    model: &str,
    signer: usize,
    nonce: u8,
) -> (String, TokenDomain) {
    let required = challenge(served, model);
    let accepted = required["accepts"][0].clone();
    let domain = TokenDomain {
        name: accepted["extra"]["name"].as_str().unwrap().into(),
        version: accepted["extra"]["version"].as_str().unwrap().into(),
        chain_id: 31337,
        token: address(&setup.token),
    };
    let payment = Payment {
        signer,
        from: setup.anvil.accounts[signer].clone(),
        to: setup.distributor.clone(),
        value: PRICE,
        valid_before: now_s() + 300,
        nonce: [nonce; 32],
        resource: required["resource"]["url"].as_str().unwrap().into(),
        accepted,
    };
    (header_of(&setup.anvil, &payment, &domain), domain)
}

#[test]
fn the_official_facilitator_settles_and_provdb_credits_what_the_chain_shows() {
    let (payer_index, facilitator_index) = (2, 8);
    let setup = setup(&[payer_index]);
    let payer = setup.anvil.accounts[payer_index].clone();
    let facilitator = Facilitator::start(&setup.anvil, facilitator_index);

    // The facilitator's settlements are plain transfers only the operator credits.
    let refused = provdb(
        &setup.data,
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--x402",
            "--x402-key-file",
            &key_file(&setup.anvil.keys[9]),
            "--x402-facilitator",
            &facilitator.url,
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("operator"),
        "{}",
        stderr(&refused)
    );

    let served = serve_with(&setup, 0, &facilitator.url);
    let model = base_model(&served, &setup.admin);
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/x402-client.sh"))
        .args(["d", "What happens behind the shock?", "--max-tokens", "8"])
        .env("PROVDB_URL", &served.url)
        .env("X402_PRIVATE_KEY", &setup.anvil.keys[payer_index])
        .env("PROVDB_MODEL", &model)
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    assert_eq!(report["status"], 200, "{report} {}", stderr(&out));
    assert_eq!(report["receipt"]["success"], true, "{report}");
    assert_eq!(report["fee_wei"], PRICE.to_string(), "{report}");
    // The receipt's transaction is the facilitator's: it sent the transfer and paid the gas.
    let tx = report["receipt"]["transaction"].as_str().unwrap();
    let sender = setup.anvil.cast_ok(&["tx", tx, "from"]);
    assert!(
        sender.eq_ignore_ascii_case(&setup.anvil.accounts[facilitator_index]),
        "{sender}"
    );
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
        PRICE
    );
    assert_eq!(
        total_deposited(&setup),
        PRICE,
        "the transfer is counted in, once"
    );
    let deposits = chain_deposits(&setup.anvil, &setup.distributor);
    assert_eq!(deposits.len(), 1);
    assert!(deposits[0].account.eq_ignore_ascii_case(&payer));

    // A replay of a settled payload is refused before the facilitator is asked.
    let (header, _) = payment(&setup, &served, &model, payer_index, 0x51);
    let (status, body, _, _) = pay(&served, &model, &header);
    assert_eq!(status, 200, "{body}");
    let (status, body, required, _) = pay(&served, &model, &header);
    assert_eq!(status, 402, "{body}");
    assert_eq!(
        required.unwrap()["error"],
        "invalid_exact_evm_nonce_already_used"
    );
    assert_eq!(total_deposited(&setup), PRICE * 2);

    // Settled by the facilitator while provdb never saw it (as when provdb is killed after
    // the settlement): the next sync credits it to the payer, once.
    let (header, _) = payment(&setup, &served, &model, payer_index, 0x52);
    let mut payload = decode(&header);
    // web3.py takes EIP-55 addresses only (provdb sends them so when it forwards a payment).
    payload["payload"]["authorization"]["from"] = json!(provdb_chain::checksummed(address(&payer)));
    let requirements = payload["accepted"].clone();
    let settled: Value = reqwest::blocking::Client::new()
        .post(format!("{}/settle", facilitator.url))
        .json(&json!({"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(settled["success"], true, "{settled}");
    drop(served);
    assert_eq!(credited(&setup, &payer), PRICE * 2);
    let operator = key_file(&setup.anvil.keys[0]);
    let sync = json(&ok(chain(
        &setup.data,
        &setup.anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert_eq!(
        sync["transfers_credited"].as_array().unwrap().len(),
        1,
        "{sync}"
    );
    assert_eq!(credited(&setup, &payer), PRICE * 3);
    let again = json(&ok(chain(
        &setup.data,
        &setup.anvil,
        &["sync", "--key-file", &operator, "--json"],
    )));
    assert!(
        again["transfers_credited"].as_array().unwrap().is_empty(),
        "{again}"
    );
    assert_eq!(credited(&setup, &payer), PRICE * 3);
    assert_eq!(total_deposited(&setup), PRICE * 3);
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
        PRICE * 3
    );
}

#[test]
fn a_facilitator_that_lies_about_settling_gets_nothing_credited_or_answered() {
    let payer_index = 2;
    let setup = setup(&[payer_index]);
    let payer = setup.anvil.accounts[payer_index].clone();
    // It names a real, successful transaction: the payer's own mint, which moved no payment.
    let mint = json(&ok(setup.anvil.cast(&[
        "send",
        &setup.token,
        "mint(address,uint256)",
        &payer,
        "1",
        "--private-key",
        &setup.anvil.keys[0],
        "--json",
    ])));
    let lie = lying_facilitator(mint["transactionHash"].as_str().unwrap().to_string());
    let served = serve_with(&setup, 0, &lie);
    let model = base_model(&served, &setup.admin);
    let (header, _) = payment(&setup, &served, &model, payer_index, 0x61);
    let before = (
        token_balance(&setup.anvil, &setup.token, &payer),
        total_deposited(&setup),
    );
    let (status, body, required, _) = pay(&served, &model, &header);
    assert_eq!(status, 402, "{body}");
    assert_eq!(required.unwrap()["error"], "transaction_failed", "{body}");
    assert!(body["choices"].is_null(), "answered: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not spend"),
        "{body}"
    );
    assert_eq!(
        (
            token_balance(&setup.anvil, &setup.token, &payer),
            total_deposited(&setup)
        ),
        before
    );
    drop(served);
    assert_eq!(credited(&setup, &payer), 0);
}
