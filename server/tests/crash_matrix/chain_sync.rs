//! SIGKILL during `provdb chain sync` against a real anvil: each trial adds an ingest batch and
//! an epoch, starts a sync and kills it at a random moment. After every kill the chain holds
//! each epoch and each batch at most once (events counted with `cast`, a reader no one here
//! wrote); at the end one sync finishes the rest, every epoch and batch is on chain exactly
//! once, the distributor holds exactly the last epoch's total, and the local ledger never
//! changed under the syncs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use crate::anvil::*;
use crate::common::*;
use crate::trials::{Minimum, Report, quarter, trials};

const EPOCH_POSTED: &str = "EpochPosted(uint256 indexed,bytes32,uint256,uint256)";
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

fn spawn_sync(data: &Path, anvil: &Anvil, key: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(["chain", "sync", "--key", key, "--rpc", &anvil.url])
        .env_remove("PROVDB_DATA")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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
    let deployed = json(&ok(chain(
        &data,
        &anvil,
        &["deploy", "--rpc", &anvil.url, "--key", &operator, "--json"],
    )));
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
    for trial in 1..=report.trials as u64 {
        let local_epochs = add_work(trial);
        let ledger_before = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
        let mut child = spawn_sync(&data, &anvil, &operator);
        // Within the time of a full sync, so that most kills cut one; every fourth trial well
        // after it, so that finished syncs are checked too.
        let full_ms = full_run.as_millis().max(2) as u64;
        let delay = if trial % 4 == 0 {
            rng.random_range(full_ms * 3..full_ms * 4)
        } else {
            rng.random_range(0..full_ms)
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
                report.interrupted += 1;
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
        distinct(&anvil.event_logs(&registry, BATCH_ANCHORED));
        let ledger_after = json(&ok(provdb(&data, &["ledger", "verify", "--json"])));
        assert_eq!(ledger_before, ledger_after, "a sync changed the ledger");
    }

    let last = json(&ok(chain(
        &data,
        &anvil,
        &["sync", "--key", &operator, "--json"],
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
    assert_eq!(anvil.balance(&distributor), total);
    report.whole_checked = epochs + batches;
    let trials = report.trials;
    report.finish(Minimum {
        interrupted: quarter(trials),
        acknowledged_checked: u64::from(trials >= 4),
    });
}
