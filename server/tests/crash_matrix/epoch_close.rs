//! SIGKILL while `provdb epoch close` runs over a large ledger: after reopening, the epoch is
//! either wholly there (its balances hash to its stored root, which equals an uninterrupted
//! close's) or absent; an acknowledged close (its JSON printed) is always there; the ledger's
//! hash chain verifies; and closing again gives the uninterrupted root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provdb::Db;
use provdb::storage::{Address, Epoch, NewAnswer};
use rand::Rng;

use crate::ledger_check::{PAYER, fund, payment, synthetic_answer};
use crate::trials::{Minimum, Report, quarter, trials};

const ANSWERS: u64 = 6000;
const ENTRIES_PER_ANSWER: u64 = 20;
const ACCOUNTS: u64 = 20_000;

fn account(n: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&(n % ACCOUNTS + 1).to_be_bytes());
    Address(bytes)
}

fn answer(n: u64) -> NewAnswer {
    let entries = (0..ENTRIES_PER_ANSWER)
        .map(|e| {
            payment(
                account(n * 7919 + e * 104_729),
                u128::from(n % 97 + e + 1),
                50_000,
            )
        })
        .collect();
    synthetic_answer(
        &format!("epoch-crash/{n}"),
        1_700_000_000_000 + n as i64,
        entries,
    )
}

/// A database whose ledger holds `ANSWERS * ENTRIES_PER_ANSWER` open payouts (with the credit
/// and charges that paid for them).
fn template(dir: &Path) -> PathBuf {
    let data = dir.join("template");
    let db = Db::init(&data).unwrap();
    fund(db.store(), PAYER);
    for start in (0..ANSWERS).step_by(500) {
        let end = (start + 500).min(ANSWERS);
        db.store()
            .append_answers((start..end).map(answer).collect())
            .unwrap();
    }
    data
}

fn spawn_close(data: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(["epoch", "close", "--json"])
        .env_remove("PROVDB_DATA")
        .env("PROVDB_MODELS", "/nonexistent/provdb-models")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The closed epoch after a crash, checked whole; `None` when the close did not commit.
fn closed_epoch(db: &Db) -> Option<Epoch> {
    let check = db.verify_ledger().unwrap();
    assert!(check.broken.is_none(), "{check:?}");
    // The payer's credit, then each answer's charge and payouts.
    assert_eq!(check.entries, 1 + ANSWERS * (1 + ENTRIES_PER_ANSWER));
    let epochs = db.store().epochs().unwrap();
    assert!(epochs.len() <= 1, "one close made {} epochs", epochs.len());
    let epoch = epochs.into_iter().next()?;
    // Its balances are all there: they hash to the stored root.
    db.store().epoch_tree(epoch.epoch).unwrap();
    Some(epoch)
}

fn same(a: &Epoch, b: &Epoch) {
    assert_eq!(
        (
            a.epoch,
            a.first_seq,
            a.end_seq,
            a.root,
            a.accounts,
            a.total_wei
        ),
        (
            b.epoch,
            b.first_seq,
            b.end_seq,
            b.root,
            b.accounts,
            b.total_wei
        )
    );
}

#[test]
fn sigkill_during_epoch_close_leaves_the_epoch_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let template = template(dir.path());

    let full = dir.path().join("full");
    crate::common::copy_dir(&template, &full);
    let started = Instant::now();
    assert!(spawn_close(&full).wait().unwrap().success());
    let full_run = started.elapsed();
    let reference = closed_epoch(&Db::open(&full).unwrap()).expect("the close committed");
    eprintln!(
        "epoch close over {} entries: {full_run:?}",
        reference.end_seq - 1
    );

    let mut rng = rand::rng();
    let mut report = Report::new("epoch_close", trials(16));
    for trial in 0..report.trials {
        let data = dir.path().join(format!("trial-{trial}"));
        crate::common::copy_dir(&template, &data);
        let mut child = spawn_close(&data);
        // Within the time of a full close, so that most kills cut one; every fourth trial well
        // after it, so that acknowledged closes are checked too.
        let full_ms = full_run.as_millis().max(2) as u64;
        let delay = if trial % 4 == 3 {
            rng.random_range(full_ms * 3 / 2..full_ms * 2)
        } else {
            rng.random_range(0..full_ms)
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        let mut printed = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut printed);
        }
        let _ = child.wait();
        let acknowledged = !printed.trim().is_empty();
        let db = Db::open(&data).unwrap();
        match closed_epoch(&db) {
            Some(epoch) => {
                same(&epoch, &reference);
                report.acknowledged_checked += u64::from(acknowledged);
                report.whole_checked += 1;
            }
            None => {
                assert!(!acknowledged, "acknowledged close lost: {printed}");
                report.interrupted += 1;
                let epoch = db.store().close_epoch(1_700_000_000_000).unwrap();
                same(&epoch, &reference);
            }
        }
        drop(db);
        std::fs::remove_dir_all(&data).unwrap();
    }
    let trials = report.trials;
    report.finish(Minimum {
        interrupted: quarter(trials),
        acknowledged_checked: u64::from(trials >= 4),
    });
}
