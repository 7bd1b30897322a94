//! SIGKILL while answers are appended to the ledger (`provdb bench answer --ledger-only`, many
//! small group commits): on reopening, the hash chain verifies, every stored answer has all
//! of its entries and no entry is without its answer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provdb::Db;
use rand::Rng;

const TRIALS: usize = 16;

fn spawn_appends(dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args([
            "bench",
            "answer",
            "--ledger-only",
            "--entries",
            "400000",
            "--group",
            "4",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The invariants; returns the number of answers stored.
fn check_whole_answers(data: &Path) -> usize {
    let db = Db::open(data).unwrap();
    let check = db.verify_ledger().unwrap();
    assert!(check.broken.is_none(), "{check:?}");
    let mut answers = 0;
    let mut expected_entries = 0u64;
    db.store()
        .visit_answers(&mut |answer| {
            answers += 1;
            expected_entries += u64::from(answer.entries);
            let mut seen = 0;
            db.store().visit_ledger(answer.first_seq, &mut |entry| {
                if seen == answer.entries {
                    return Ok(false);
                }
                assert_eq!(entry.answer_id, answer.answer_id, "entry {}", entry.seq);
                seen += 1;
                Ok(true)
            })?;
            assert_eq!(
                seen, answer.entries,
                "answer {} is partial",
                answer.answer_id
            );
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        check.entries, expected_entries,
        "no entry without its answer"
    );
    answers
}

#[test]
fn sigkill_during_answers_leaves_every_answer_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut interrupted = 0;
    for trial in 0..TRIALS {
        let run = dir.path().join(format!("trial-{trial}"));
        let started = Instant::now();
        let mut child = spawn_appends(&run);
        let wait = Duration::from_millis(rng.random_range(150..1500));
        std::thread::sleep(wait);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let data = run.join("ledger");
        if !data.join("storage").join("CURRENT").exists() {
            continue; // killed before the database existed: nothing was acknowledged
        }
        let answers = check_whole_answers(&data);
        if !finished && answers > 0 {
            interrupted += 1;
        }
        eprintln!(
            "trial {trial}: killed after {:?}, {answers} whole answers",
            started.elapsed()
        );
    }
    assert!(
        interrupted >= TRIALS / 2,
        "only {interrupted} runs were cut mid-append"
    );
}
