//! SIGKILL during `provdb chain sync` against a real anvil: each trial adds an ingest batch and
//! an epoch, starts a sync and kills it at a random moment. After every kill the chain holds
//! each epoch and each batch at most once (events counted with `cast`, a reader no one here
//! wrote); at the end one sync finishes the rest, every epoch and batch is on chain exactly
//! once, the chain owes exactly the last epoch's total out of the deposit that funds them, and
//! the local ledger never changed under the syncs (the one deposit is credited before the
//! trials; `chain_deposits.rs` kills syncs while they credit). Anvil mines a block a second,
//! so that a sync spends seconds among its transactions; a trial counts as killed mid-work
//! when the sync was killed after sending at least one.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use crate::anvil::*;
use crate::common::*;
use crate::syncing::spawn_sync;
use crate::trials::{Minimum, Report, quarter, trials};

const BATCH_ANCHORED: &str = "BatchAnchored(uint32 indexed,uint64,uint64,bytes32,uint32)";

/// Asserts no log repeats (the same event data twice means a doubled post); returns how many.
fn distinct(logs: &[Value]) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for log in logs {
        let key = (log["topics"].to_string(), log["data"].to_string());
        assert!(seen.insert(key), "posted twice: {log}");
    }
    seen.len()
}

/// The epoch numbers posted, in the order of their events, each at most once.
fn posted_epochs(anvil: &Anvil, distributor: &str) -> Vec<u64> {
    let logs = anvil.event_logs(distributor, EPOCH_POSTED);
    distinct(&logs);
    logs.iter()
        .map(|log| {
            let topic = log["topics"][1].as_str().unwrap().trim_start_matches("0x");
            u64::from_str_radix(&topic[48..], 16).unwrap()
        })
        .collect()
}

/// Mines a block every second instead of one per transaction, as a real chain does: a sync
/// then spends seconds between sending a transaction and its receipt, where kills can land
/// (mined at once, its transactions take a few milliseconds of a sync's run, and kills at
/// random times almost never cut it between two of them).
fn mine_every_second(anvil: &Anvil) {
    let client = reqwest::blocking::Client::new();
    for (method, params) in [
        ("evm_setAutomine", serde_json::json!([false])),
        ("evm_setIntervalMining", serde_json::json!([1])),
    ] {
        let request =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response: Value = client
            .post(&anvil.url)
            .json(&request)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(response["error"].is_null(), "{method}: {response}");
    }
}

#[test]
fn sigkill_during_chain_sync_neither_skips_nor_doubles() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    let operator = anvil.keys[0].clone();
    let accounts: Vec<String> = anvil.accounts[1..4].to_vec();
    let deployed = deploy(&data, &anvil);
    let registry = deployed["registry"].as_str().unwrap().to_string();
    let distributor = deployed["distributor"].as_str().unwrap().to_string();

    let mut epochs = 0u64;
    let mut add_work = |n: u64| {
        ingest(&data, dir.path(), "aero", &[&format!("batch {n} text")]);
        let payments: Vec<(&str, u128)> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), u128::from(n) * 1000 + i as u128 + 1))
            .collect();
        epochs = pay_and_close(&data, &payments, n);
        epochs
    };
    // One deposit funds every epoch of the run (posting an epoch brings no money in).
    let funding = 1_000_000_000_000_000_000u128;
    anvil.send_deposit(
        &distributor,
        &anvil.accounts[5],
        &anvil.accounts[6],
        funding,
    );
    mine_every_second(&anvil);
    // An uninterrupted sync of one batch and one epoch gives the window to kill in.
    add_work(0);
    let started = Instant::now();
    assert!(
        spawn_sync(&data, &anvil, &operator)
            .wait()
            .unwrap()
            .success()
    );
    let full_run = started.elapsed();

    let mut rng = rand::rng();
    let mut report = Report::new("chain_sync", trials(12));
    eprintln!("full sync {full_run:?}");
    for trial in 1..=report.trials as u64 {
        let local_epochs = add_work(trial);
        let ledger_before = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
        let on_chain_before = (
            posted_epochs(&anvil, &distributor).len(),
            distinct(&anvil.event_logs(&registry, BATCH_ANCHORED)),
        );
        let mut child = spawn_sync(&data, &anvil, &operator);
        // Every fourth trial is killed well after a full sync's time, so that finished syncs
        // are checked; one in four anywhere in it; the others in its middle half, among its
        // transactions (it starts and reads state first, and saves after the last receipt).
        let full_ms = full_run.as_millis().max(4) as u64;
        let delay = match trial % 4 {
            0 => rng.random_range(full_ms * 3..full_ms * 4),
            1 => rng.random_range(0..full_ms),
            _ => rng.random_range(full_ms / 4..full_ms * 3 / 4),
        };
        std::thread::sleep(Duration::from_millis(delay));
        let finished = match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "sync failed");
                true
            }
            None => {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                // A transaction it sent shows once the next block is mined.
                std::thread::sleep(Duration::from_millis(1200));
                false
            }
        };
        let posted = posted_epochs(&anvil, &distributor);
        if finished {
            assert_eq!(
                posted.len() as u64,
                local_epochs,
                "a finished sync posted all"
            );
            report.acknowledged_checked += 1;
        }
        assert!(
            posted.len() as u64 <= local_epochs,
            "{posted:?} of {local_epochs}"
        );
        assert_eq!(
            posted,
            (1..=posted.len() as u64).collect::<Vec<_>>(),
            "skipped"
        );
        let on_chain = (
            posted.len(),
            distinct(&anvil.event_logs(&registry, BATCH_ANCHORED)),
        );
        // Killed after sending at least one transaction: cut in the middle of the sync.
        if !finished && on_chain != on_chain_before {
            report.interrupted += 1;
        }
        eprintln!(
            "trial {trial}: {} after {delay} ms; (epochs, batches) on chain {on_chain_before:?} \
             -> {on_chain:?}",
            if finished { "finished" } else { "killed" }
        );
        let ledger_after = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
        assert_eq!(ledger_before, ledger_after, "a sync changed the ledger");
    }

    let last = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key-file", &key_file(&operator), "--json"],
    )));
    assert_eq!(last["chain_last_epoch"], epochs, "{last}");
    let status = json(&ok(chain(&data, &anvil, &["status", "--json"])));
    assert_eq!(status["pending_batches"], 0, "{status}");
    for e in status["epochs"].as_array().unwrap() {
        assert_eq!(e["state"], "synced", "{status}");
        assert!(e["tx"].is_string(), "every post's tx is recorded: {status}");
    }
    assert_eq!(
        posted_epochs(&anvil, &distributor),
        (1..=epochs).collect::<Vec<_>>()
    );
    let batches = status["local_batches"].as_u64().unwrap();
    assert_eq!(
        distinct(&anvil.event_logs(&registry, BATCH_ANCHORED)) as u64,
        batches,
        "every ingest batch anchored exactly once"
    );
    let total = last_epoch_total(&data);
    assert_eq!(
        anvil.read_u128(&distributor, "lastTotal()(uint128)", &[]),
        total
    );
    assert_eq!(
        anvil.balance(&distributor),
        funding,
        "posts bring no money in"
    );
    assert_eq!(status["deposits"]["credited_wei"], funding.to_string());
    report.whole_checked = epochs + batches;
    let trials = report.trials;
    report.finish(Minimum {
        interrupted: quarter(trials),
        acknowledged_checked: u64::from(trials >= 4),
    });
}
