//! `provdb bench sql` on a tiny Datanet, so the bench code cannot rot: it builds, ingests,
//! exports, times both queries and reports JSON; a second run reuses the kept database. When
//! the DuckDB venv is already installed (scripts/bench-duckdb.sh), DuckDB runs too and its
//! rows must match provdb's; otherwise the baseline is skipped (no network in a test).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{json, ok, repo_root};

fn duckdb_installed() -> bool {
    let venv = std::env::var_os("PROVDB_DUCKDB_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/provdb/duckdb-venv"))
        });
    venv.is_some_and(|v| v.join("bin/python").exists())
}

fn bench(dir: &Path, baseline: bool) -> serde_json::Value {
    let repo = repo_root();
    let mut command = Command::new(env!("CARGO_BIN_EXE_provdb"));
    command
        .current_dir(&repo)
        .args(["bench", "sql", "--records", "2000", "--file-records", "500"])
        .args(["--reps", "1", "--json", "--dir"])
        .arg(dir)
        .env_remove("PROVDB_DATA");
    if !baseline {
        command.env("PROVDB_BENCH_NO_BASELINE", "1");
    }
    json(&ok(command.output().expect("run provdb bench sql")))
}

#[test]
fn bench_sql_runs_on_a_tiny_datanet_and_both_engines_agree() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = duckdb_installed();
    let report = bench(dir.path(), baseline);
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
    let again = bench(dir.path(), false);
    assert_eq!(again["reused_database"], true);
    for (first, second) in queries.iter().zip(again["queries"].as_array().unwrap()) {
        assert_eq!(first["checksum"], second["checksum"]);
    }
}
