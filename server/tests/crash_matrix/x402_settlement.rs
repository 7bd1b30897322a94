//! SIGKILL of `provdb serve --x402` while it settles and answers an x402 payment, against a
//! real anvil and the real SmolLM2: each trial starts the server, sends a cited question with
//! a fresh signed payment, and kills the server at a random moment of the request. After every
//! kill, `provdb chain sync` runs (it credits a deposit the server settled but did not credit),
//! and then: every deposit on chain (read back with `cast`) is credited exactly once, to its
//! signer; the payer's account was credited exactly its deposits and charged exactly the fees
//! of its recorded answers, so a fee paid for an answer that was never made stays in its
//! balance (never lost, never charged twice); the ledger's hash chain verifies. A trial counts
//! as killed mid-work when its payment was settled on chain but its answer not recorded.

use std::time::{Duration, Instant};

use provdb_chain::TokenDomain;
use rand::Rng;

use crate::anvil::*;
use crate::common::*;
use crate::served::base_model;
use crate::trials::{Minimum, Report, trials};
use crate::x402_fixture::*;

/// The payer's anvil account.
const PAYER: usize = 2;

/// The payment of trial `n`: the price, to the distributor, nonce `n`.
fn payment(setup: &Setup, accepted: &serde_json::Value, resource: &str, n: u8) -> Payment {
    Payment {
        signer: PAYER,
        from: setup.anvil.accounts[PAYER].clone(),
        to: setup.distributor.clone(),
        value: PRICE,
        valid_before: now_s() + 3_600,
        nonce: [n; 32],
        resource: resource.to_string(),
        accepted: accepted.clone(),
    }
}

/// Sends the question with `header` on a thread of its own (the server may die under it).
fn send(url: &str, model: &str, header: String) -> std::thread::JoinHandle<Option<u16>> {
    let url = format!("{url}/v1/chat/completions");
    let body = ask_body(model);
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        client
            .post(url)
            .header("PAYMENT-SIGNATURE", header)
            .json(&body)
            .send()
            .ok()
            .map(|r| r.status().as_u16())
    })
}

/// Checks the money after a kill; returns (deposits on chain, answers the payer was charged).
fn check(setup: &Setup) -> (usize, u64) {
    let operator = key_file(&setup.anvil.keys[0]);
    ok(chain(
        &setup.data,
        &setup.anvil,
        &["sync", "--key-file", &operator],
    ));
    let on_chain = chain_deposits(&setup.anvil, &setup.distributor);
    assert_eq!(check_credited_once(&setup.data, &on_chain), on_chain.len());
    let verify = json(&ok(provdb(&setup.data, &["ledger", "verify", "--json"])));
    assert_eq!(verify["ok"], true, "{verify}");
    let payer = &setup.anvil.accounts[PAYER];
    let account = json(&ok(provdb(
        &setup.data,
        &["account", "show", payer, "--json"],
    )));
    let wei = |field: &str| account[field].as_str().unwrap().parse::<u128>().unwrap();
    let deposited = on_chain.len() as u128 * PRICE;
    assert_eq!(wei("credited_wei"), deposited, "{account}");
    let answers = account["answers"].as_u64().unwrap();
    assert_eq!(wei("charged_wei"), u128::from(answers) * PRICE, "{account}");
    assert_eq!(
        wei("balance_wei"),
        deposited - wei("charged_wei"),
        "an unanswered payment stays in the balance: {account}"
    );
    assert_eq!(
        token_balance(&setup.anvil, &setup.token, &setup.distributor),
        deposited
    );
    (on_chain.len(), answers)
}

#[test]
fn sigkill_between_settlement_and_answer_neither_loses_nor_doubles_a_payment() {
    let setup = setup(&[PAYER]);
    let served = setup.serve();
    let model = base_model(&served, &setup.admin);
    let required = challenge(&served, &model);
    let accepted = required["accepts"][0].clone();
    let resource = required["resource"]["url"].as_str().unwrap().to_string();
    let domain = TokenDomain {
        name: accepted["extra"]["name"].as_str().unwrap().into(),
        version: accepted["extra"]["version"].as_str().unwrap().into(),
        chain_id: 31337,
        token: address(&setup.token),
    };
    // An uninterrupted paid request gives the window to kill in.
    let started = Instant::now();
    let header = header_of(
        &setup.anvil,
        &payment(&setup, &accepted, &resource, 1),
        &domain,
    );
    assert_eq!(send(&served.url, &model, header).join().unwrap(), Some(200));
    let full_ms = started.elapsed().as_millis().max(4) as u64;
    eprintln!("a paid answer took {full_ms} ms");
    drop(served);
    assert_eq!(check(&setup), (1, 1));

    let mut rng = rand::rng();
    let mut report = Report::new("x402_settlement", trials(6));
    for trial in 1..=report.trials {
        let (deposits_before, answers_before) = check(&setup);
        let served = setup.serve();
        // The listening port changes with every start: the resource is this server's.
        let required = challenge(&served, &model);
        let resource = required["resource"]["url"].as_str().unwrap().to_string();
        let n = u8::try_from(trial + 1).unwrap();
        let header = header_of(
            &setup.anvil,
            &payment(&setup, &accepted, &resource, n),
            &domain,
        );
        let request = send(&served.url, &model, header);
        let delay = rng.random_range(0..full_ms + full_ms / 4);
        std::thread::sleep(Duration::from_millis(delay));
        drop(served); // SIGKILL
        let status = request.join().unwrap();
        let (deposits, answers) = check(&setup);
        let settled = deposits > deposits_before;
        let answered = answers > answers_before;
        assert!(!answered || settled, "an answer without its payment");
        if status == Some(200) {
            assert!(answered, "a 200 whose answer was not recorded");
            report.acknowledged_checked += 1;
        }
        if settled && !answered {
            report.interrupted += 1;
        }
        eprintln!(
            "trial {trial}: killed after {delay} ms ({status:?}); settled {settled}, answered {answered}"
        );
    }
    report.whole_checked = check(&setup).0 as u64;
    report.finish(Minimum {
        interrupted: 1,
        acknowledged_checked: 0,
    });
}
