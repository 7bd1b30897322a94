//! `provdb bench ingest` on a small replicated Cranfield, so the bench code cannot rot: it
//! writes the inputs, runs raw RocksDB and provdb (unsigned and signed) into empty databases,
//! and reports rates, CPU times and ratios as JSON.

use std::process::Command;

use crate::common::{json, ok, repo_root};

#[test]
fn bench_ingest_reports_every_side_of_a_small_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .current_dir(repo_root())
        .args(["bench", "ingest", "--records", "3000", "--batch", "1000"])
        .args(["--runs", "2", "--json"])
        .env_remove("PROVDB_DATA")
        .output()
        .expect("run provdb bench ingest");
    let report = json(&ok(output));
    assert_eq!(report["records"], 3000);
    assert_eq!(report["files"], 3);
    assert_eq!(report["runs"], 2);
    for side in ["raw_rocksdb", "unsigned", "signed"] {
        let rate = &report[side];
        let seconds = rate["seconds"].as_f64().unwrap();
        assert!(seconds > 0.0, "{side}: {rate}");
        let per_s = rate["records_per_s"].as_f64().unwrap();
        assert!((per_s * seconds - 3000.0).abs() < 1.0, "{side}: {rate}");
        if cfg!(target_os = "linux") {
            assert!(
                rate["cpu_seconds"].as_f64().unwrap() >= 0.0,
                "{side}: {rate}"
            );
        }
    }
    let ratio = report["unsigned_vs_raw"].as_f64().unwrap();
    let raw = report["raw_rocksdb"]["seconds"].as_f64().unwrap();
    let unsigned = report["unsigned"]["seconds"].as_f64().unwrap();
    assert!((ratio - raw / unsigned).abs() < 1e-9, "{report}");
    assert_eq!(
        report["unsigned_vs_raw_per_run"].as_array().unwrap().len(),
        2
    );
    assert!(report["signed_vs_raw"].as_f64().unwrap() > 0.0);
    assert_eq!(report["target_unsigned_vs_raw"], 0.5);
}
