//! SIGKILL while answers are appended to the ledger (`provdb bench answer --ledger-only
//! --print-commits`, many small group commits, each printed as soon as its write returns): on
//! reopening, every printed group is in the ledger with all of its answers, the hash chain
//! verifies, every stored answer has all of its entries and no entry is without its answer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use provdb::Db;
use provdb::storage::AnswerId;
use rand::Rng;

use crate::ledger_check::check_whole_answers;
use crate::trials::{Minimum, Report, trials};

/// `provdb bench` runs this binary, which cargo builds beside `provdb`.
fn bench_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_provdb")).with_file_name("provdb-bench")
}

/// The appending process and the reader of the groups it prints.
fn spawn_appends(dir: &Path) -> (Child, JoinHandle<Vec<Vec<AnswerId>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args(["bench", "answer", "--ledger-only", "--print-commits"])
        .args(["--entries", "400000", "--group", "4"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read as it comes, so the bench never blocks on a full pipe.
    let reader = std::thread::spawn(move || committed_groups(BufReader::new(stdout)));
    (child, reader)
}

/// The groups printed as `committed ID ID ...`; a line cut by the kill (no newline) is not an
/// acknowledgement.
fn committed_groups(mut out: impl BufRead) -> Vec<Vec<AnswerId>> {
    let mut groups = Vec::new();
    let mut line = String::new();
    while out.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(ids) = line
            .strip_suffix('\n')
            .and_then(|l| l.strip_prefix("committed "))
        {
            groups.push(ids.split(' ').map(|id| id.parse().unwrap()).collect());
        }
        line.clear();
    }
    groups
}

/// Asserts every acknowledged group is stored, all of it; returns the answers checked.
fn check_acknowledged(data: &Path, groups: &[Vec<AnswerId>]) -> u64 {
    let db = Db::open(data).unwrap();
    let mut checked = 0;
    for group in groups {
        let missing: Vec<&AnswerId> = group
            .iter()
            .filter(|id| db.store().answer(id).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged group {group:?} lost {missing:?}"
        );
        checked += group.len() as u64;
    }
    checked
}

#[test]
fn sigkill_during_answers_loses_no_acknowledged_group_and_leaves_every_answer_whole() {
    assert!(
        bench_binary().is_file(),
        "{} is missing: build it with `cargo build --workspace --bin provdb-bench`",
        bench_binary().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut report = Report::new("ledger_appends", trials(16));
    let mut trials_acknowledged = 0;
    for trial in 0..report.trials {
        let run = dir.path().join(format!("trial-{trial}"));
        let started = Instant::now();
        let (mut child, reader) = spawn_appends(&run);
        let wait = Duration::from_millis(rng.random_range(150..1500));
        std::thread::sleep(wait);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        let groups = reader.join().unwrap();
        let data = run.join("ledger");
        if !data.join("storage").join("CURRENT").exists() {
            assert!(groups.is_empty(), "groups acknowledged without a database");
            continue; // killed before the database existed: nothing was acknowledged
        }
        let answers = check_whole_answers(&data);
        let acknowledged = check_acknowledged(&data, &groups);
        assert!(answers as u64 >= acknowledged, "{answers} < {acknowledged}");
        report.whole_checked += answers as u64;
        report.acknowledged_checked += acknowledged;
        trials_acknowledged += usize::from(acknowledged > 0);
        if !finished && answers > 0 {
            report.interrupted += 1;
        }
        eprintln!(
            "trial {trial}: killed after {:?}, {} groups acknowledged, {answers} whole answers",
            started.elapsed(),
            groups.len()
        );
    }
    let half = report.trials / 2;
    report.finish(Minimum {
        interrupted: half,
        // Groups of four answers, in half the trials at least.
        acknowledged_checked: 4 * half as u64,
    });
    assert!(
        trials_acknowledged >= half,
        "only {trials_acknowledged} trials acknowledged a group before the kill"
    );
}
