//! SIGKILL during ingest: every acknowledged file is whole after reopening, no file is partly
//! stored, and the sequence counts exactly the committed batches.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provdb::storage::{RecordId, record_id_of};
use provdb::{Datanet, Db};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::common::ALICE;
use crate::trials::{Minimum, Report, quarter, trials};

const FILES: usize = 12;
const RECORDS_PER_FILE: usize = 1500;

struct Input {
    path: PathBuf,
    ids: Vec<RecordId>,
}

fn write_inputs(dir: &Path) -> Vec<Input> {
    (0..FILES)
        .map(|file| {
            let mut lines = String::new();
            let mut ids = Vec::with_capacity(RECORDS_PER_FILE);
            for n in 0..RECORDS_PER_FILE {
                let content = json!({"text": format!("record {n} of file {file}: {}", "lorem ipsum dolor ".repeat(40)), "n": n});
                let Value::Object(map) = &content else { unreachable!() };
                ids.push(record_id_of(&provdb::ingest::canonical_object(map)));
                let mut row: Map<String, Value> = map.clone();
                row.insert("contributor".into(), ALICE.into());
                lines.push_str(&Value::Object(row).to_string());
                lines.push('\n');
            }
            let path = dir.join(format!("part-{file:02}.jsonl"));
            std::fs::write(&path, lines).unwrap();
            Input { path, ids }
        })
        .collect()
}

fn fresh_database(data: &Path) {
    let db = Db::init(data).unwrap();
    db.create_datanet(Datanet::new("crash")).unwrap();
}

fn spawn_ingest(data: &Path, inputs: &[Input]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .arg("ingest")
        .arg("crash")
        .arg("--no-index")
        .args(inputs.iter().map(|i| &i.path))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Checks the invariants after a crash; returns the number of committed files.
fn check_consistent(data: &Path, inputs: &[Input], acknowledged: &[String]) -> usize {
    let db = Db::open(data).unwrap();
    let store = db.store();
    let mut committed = 0;
    let mut records = 0;
    for input in inputs {
        let present = store
            .existing_records(&input.ids)
            .unwrap()
            .into_iter()
            .filter(|p| *p)
            .count();
        assert!(
            present == 0 || present == input.ids.len(),
            "{} is partly stored: {present}",
            input.path.display()
        );
        let name = input.path.display().to_string();
        if acknowledged.iter().any(|a| a == &name) {
            assert_eq!(present, input.ids.len(), "acknowledged {name} lost records");
        }
        if present > 0 {
            committed += 1;
            records += present;
        }
    }
    let info = db.datanet_info("crash").unwrap();
    assert_eq!(
        info.stats.records as usize, records,
        "stats agree with the records present"
    );
    assert_eq!(
        store.sequence().unwrap() as usize,
        1 + committed,
        "one sequence per committed batch"
    );
    assert_eq!(store.log_since(0).unwrap().len(), 1 + committed);
    let datanet = store.datanet("crash").unwrap();
    assert_eq!(store.scan_records(datanet.id).unwrap().count(), records);
    committed
}

/// The file a line of `provdb ingest` acknowledges, if it is such a line.
fn acknowledged_file(line: &str) -> Option<String> {
    line.strip_prefix("ingested ")
        .and_then(|rest| rest.split(": ").next())
        .map(str::to_string)
}

fn acknowledged_files(child: &mut std::process::Child) -> Vec<String> {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    out.lines().filter_map(acknowledged_file).collect()
}

/// An uninterrupted ingest's acknowledged files, and when the first was acknowledged after
/// `started`.
fn acknowledged_files_timed(
    child: &mut std::process::Child,
    started: Instant,
) -> (Vec<String>, Duration) {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = None;
    let mut files = Vec::new();
    for line in stdout.lines() {
        if let Some(file) = acknowledged_file(&line.unwrap()) {
            first.get_or_insert_with(|| started.elapsed());
            files.push(file);
        }
    }
    (files, first.unwrap_or_default())
}

#[test]
fn sigkill_during_ingest_loses_no_acknowledged_batch_and_leaves_no_partial_one() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = write_inputs(dir.path());

    let full = dir.path().join("full");
    fresh_database(&full);
    let started = Instant::now();
    let mut child = spawn_ingest(&full, &inputs);
    let (acknowledged, first_commit) = acknowledged_files_timed(&mut child, started);
    assert!(child.wait().unwrap().success());
    let full_run = started.elapsed();
    assert_eq!(acknowledged.len(), FILES);
    assert_eq!(check_consistent(&full, &inputs, &acknowledged), FILES);

    let mut rng = rand::rng();
    let mut report = Report::new("ingest", trials(24));
    for trial in 0..report.trials {
        let data = dir.path().join(format!("trial-{trial}"));
        fresh_database(&data);
        let mut child = spawn_ingest(&data, &inputs);
        // Anywhere in the time of a full ingest; every other trial between its first
        // acknowledged file and its end, where commits happen, so that most of those cut it
        // with some files committed and some not.
        let full_ms = full_run.as_millis().max(2) as u64;
        let from_ms = if trial % 2 == 1 {
            (first_commit.as_millis() as u64).min(full_ms - 1)
        } else {
            0
        };
        let delay = rng.random_range(from_ms..full_ms);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL on Unix
        let acknowledged = acknowledged_files(&mut child);
        let _ = child.wait();
        let committed = check_consistent(&data, &inputs, &acknowledged);
        assert!(committed >= acknowledged.len());
        report.acknowledged_checked += acknowledged.len() as u64;
        report.whole_checked += committed as u64;
        // Some files committed and some not: killed in the middle of the ingest.
        if committed > 0 && committed < FILES {
            report.interrupted += 1;
        }
        std::fs::remove_dir_all(&data).unwrap();
    }
    let minimum = quarter(report.trials);
    report.finish(Minimum {
        interrupted: minimum,
        acknowledged_checked: minimum as u64,
    });
}
