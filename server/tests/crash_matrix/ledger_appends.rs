//! SIGKILL while answers are appended to the ledger (`provdb bench answer --ledger-only`, many
//! small group commits): on reopening, the hash chain verifies, every stored answer has all
//! of its entries and no entry is without its answer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::ledger_check::check_whole_answers;
use crate::trials::{Report, trials};

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

#[test]
fn sigkill_during_answers_leaves_every_answer_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut report = Report::new("ledger_appends", trials(16));
    for trial in 0..report.trials {
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
        report.whole_checked += answers as u64;
        if !finished && answers > 0 {
            report.interrupted += 1;
        }
        eprintln!(
            "trial {trial}: killed after {:?}, {answers} whole answers",
            started.elapsed()
        );
    }
    assert!(
        report.interrupted >= report.trials / 2,
        "only {} runs were cut mid-append",
        report.interrupted
    );
    report.finish();
}
