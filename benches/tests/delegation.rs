//! `provdb bench ...` runs this crate's binary: the same output and exit code as
//! `provdb-bench ...`, in the same process (so a signal sent to `provdb` reaches the
//! benchmark), and a clear user error when `provdb-bench` is not beside `provdb`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{bench, json, ok, repo_root, stderr, stdout};

/// The `provdb` binary cargo built beside `provdb-bench` (a workspace build makes both).
fn provdb() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_provdb-bench")).with_file_name("provdb");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace (`cargo build --workspace --bins`)",
        path.display()
    );
    path
}

fn provdb_bench(provdb: &Path, args: &[&str]) -> std::process::Output {
    Command::new(provdb)
        .current_dir(repo_root())
        .arg("bench")
        .args(args)
        .env_remove("PROVDB_DATA")
        .output()
        .unwrap()
}

#[test]
fn provdb_bench_prints_what_provdb_bench_prints() {
    let through_provdb = ok(provdb_bench(&provdb(), &["ingest", "--help"]));
    let direct = ok(bench().args(["ingest", "--help"]).output().unwrap());
    assert_eq!(stdout(&through_provdb), stdout(&direct));
    assert!(
        stdout(&direct).contains("--unsigned-only"),
        "{}",
        stdout(&direct)
    );
    let listing = ok(provdb_bench(&provdb(), &["--help"]));
    for benchmark in [
        "ingest", "embed", "generate", "search", "answer", "sql", "chain", "adapters", "train",
    ] {
        assert!(
            stdout(&listing).contains(benchmark),
            "{benchmark}: {}",
            stdout(&listing)
        );
    }
}

#[test]
fn provdb_bench_passes_options_provdb_also_knows_to_the_benchmark() {
    // `--json` is an option of `provdb`'s commands too: after `bench` it is the benchmark's.
    let output = ok(provdb_bench(
        &provdb(),
        &["ingest", "--records", "30", "--batch", "10", "--runs", "1"],
    ));
    assert!(
        stdout(&output).starts_with("ingest of 30 records"),
        "{}",
        stdout(&output)
    );
    let report = json(&ok(provdb_bench(
        &provdb(),
        &[
            "ingest",
            "--records",
            "30",
            "--batch",
            "10",
            "--runs",
            "1",
            "--json",
        ],
    )));
    assert_eq!(report["records"], 30);
    assert_eq!(report["files"], 3);
}

#[test]
fn provdb_bench_returns_the_benchmarks_exit_code() {
    let refused = provdb_bench(&provdb(), &["train", "--steps", "0"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--steps"), "{}", stderr(&refused));
    let unknown = provdb_bench(&provdb(), &["no-such-benchmark"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", stderr(&unknown));
}

#[cfg(target_os = "linux")]
#[test]
fn provdb_bench_becomes_the_benchmark_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(provdb())
        .args(["bench", "answer", "--ledger-only", "--print-commits"])
        .args(["--entries", "400000", "--group", "4", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Held open until the kill: a closed pipe would end the benchmark first.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(out);
    assert!(first.starts_with("committed "), "{first}");
    assert_eq!(
        exe.file_name().unwrap(),
        "provdb-bench",
        "the pid provdb was started as runs {}",
        exe.display()
    );
}

#[test]
fn provdb_bench_without_the_binary_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("provdb");
    std::fs::copy(provdb(), &alone).unwrap();
    let output = provdb_bench(&alone, &["ingest", "--records", "10"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("provdb-bench") && message.contains("cargo build"),
        "{message}"
    );
}
