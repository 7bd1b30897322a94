//! `provdb-bench sql` on a tiny Datanet, so the bench code cannot rot: it builds, ingests,
//! exports, times both queries and reports JSON; a second run reuses the kept database. When
//! the DuckDB venv is already installed (scripts/bench-duckdb.sh), DuckDB runs too and its
//! rows must match provdb's; otherwise the test opts out explicitly (no network in a test).
//! Without the opt-out, a DuckDB that cannot run fails the bench, naming the script.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{bench, json, ok, stderr};

fn duckdb_installed() -> bool {
    let venv = std::env::var_os("PROVDB_DUCKDB_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/provdb/duckdb-venv"))
        });
    venv.is_some_and(|v| v.join("bin/python").exists())
}

fn bench_sql(dir: &Path, extra: &[&str]) -> Output {
    bench()
        .args(["sql", "--records", "2000", "--file-records", "500"])
        .args(["--reps", "1", "--json", "--dir"])
        .arg(dir)
        .args(extra)
        .env_remove("PROVDB_BENCH_NO_BASELINE")
        .output()
        .unwrap()
}

#[test]
fn bench_sql_runs_on_a_tiny_datanet_and_both_engines_agree() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = duckdb_installed();
    let opt_out: &[&str] = if baseline { &[] } else { &["--no-baseline"] };
    let report = json(&ok(bench_sql(dir.path(), opt_out)));
    assert_eq!(report["records"], 2000);
    assert_eq!(report["files"], 4);
    assert_eq!(report["reused_database"], false);
    assert_eq!(report["statuses_changed"], 60);
    let queries = report["queries"].as_array().unwrap();
    let names: Vec<&str> = queries
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["group_by_contributor", "contributor_month"]);
    for query in queries {
        assert!(query["provdb_s"].as_f64().unwrap() > 0.0, "{query}");
        assert!(query["rows"].as_u64().unwrap() > 0, "{query}");
        if baseline {
            assert_eq!(query["results_match"], true, "{query}");
        } else {
            assert!(query["ratio"].is_null(), "{query}");
        }
    }
    let again = json(&ok(bench_sql(dir.path(), &["--no-baseline"])));
    assert_eq!(again["reused_database"], true);
    for (first, second) in queries.iter().zip(again["queries"].as_array().unwrap()) {
        assert_eq!(first["checksum"], second["checksum"]);
    }
}

#[test]
fn bench_sql_without_duckdb_fails_naming_the_script_unless_told_to_skip_it() {
    let dir = tempfile::tempdir().unwrap();
    // A venv path under a regular file: the script can neither find nor create DuckDB there,
    // and fails without reaching the network.
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let output = bench()
        .args([
            "sql",
            "--records",
            "100",
            "--file-records",
            "50",
            "--reps",
            "1",
        ])
        .arg("--dir")
        .arg(dir.path().join("work"))
        .env_remove("PROVDB_BENCH_NO_BASELINE")
        .env("PROVDB_DUCKDB_VENV", blocker.join("venv"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("scripts/bench-duckdb.sh") && message.contains("--no-baseline"),
        "{message}"
    );
    assert!(
        !dir.path().join("work").join("db").exists(),
        "failed before building anything"
    );
}
