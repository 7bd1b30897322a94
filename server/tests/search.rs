//! `provdb search` and `provdb ingest` indexing from the command line: JSON shape, modes,
//! and bad requests (exit 1, nothing stored changes).

use crate::common::*;
use crate::tiny_model::write_tiny_model;

fn setup(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = dir.join("db");
    let model = dir.join("model");
    write_tiny_model(&model);
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "aero"]));
    let input = dir.join("aero.jsonl");
    let lines: Vec<String> = [
        "shock wave on the wing",
        "boundary layer heat transfer",
        "jet flow over a cone",
        "lift of a flat plate",
    ]
    .iter()
    .map(|t| format!("{{\"text\":\"{t}\",\"contributor\":\"{ALICE}\"}}"))
    .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = ok(provdb(
        &data,
        &[
            "ingest",
            "aero",
            input.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    ));
    assert!(
        stdout(&out).contains("indexed 4 chunks (4 full-text, 4 embedded"),
        "{}",
        stdout(&out)
    );
    (data, model)
}

#[test]
fn search_prints_hits_with_provenance_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path());
    for mode in ["bm25", "vector", "hybrid"] {
        let out = json(&ok(provdb(
            &data,
            &[
                "search",
                "aero",
                "boundary layer heat",
                "-k",
                "3",
                "--mode",
                mode,
                "--json",
                "--model",
                model.to_str().unwrap(),
            ],
        )));
        let hits = out["hits"].as_array().unwrap();
        assert!(!hits.is_empty() && hits.len() <= 3, "{mode}: {out}");
        for hit in hits {
            for field in ["chunk_id", "record_id", "contributor", "score", "text"] {
                assert!(!hit[field].is_null(), "{mode}: {field} missing in {hit}");
            }
            assert_eq!(hit["contributor"], ALICE);
        }
        if mode != "vector" {
            assert_eq!(hits[0]["text"], "boundary layer heat transfer", "{mode}");
        }
    }
    let table = ok(provdb(&data, &["search", "aero", "cone", "--mode", "bm25"]));
    assert!(stdout(&table).contains("jet flow over a cone"));
}

#[test]
fn sql_search_functions_join_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path());
    let query = "SELECT c.text, r.contributor, s.rank FROM hybrid_search('aero', 'boundary layer heat', 2) s \
                 JOIN chunks c USING (chunk_id) JOIN records r USING (record_id) ORDER BY s.rank";
    let out = json(&ok(provdb(
        &data,
        &[
            "sql",
            query,
            "--format",
            "json",
            "--model",
            model.to_str().unwrap(),
        ],
    )));
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["text"], "boundary layer heat transfer");
    assert_eq!(rows[0]["contributor"], ALICE);
    assert_eq!(rows[1]["rank"], 2);
    let bad = provdb(
        &data,
        &["sql", "SELECT * FROM bm25_search('aero', 'heat', 'three')"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("argument 3 (k) must be a number"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn bad_search_requests_exit_1_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path());
    let model = model.to_str().unwrap();
    let before = json(&ok(provdb(&data, &["datanet", "show", "aero", "--json"])));
    for (args, message) in [
        (vec!["search", "nope", "wing", "--mode", "bm25"], "nope"),
        (
            vec!["search", "aero", "wing", "--mode", "fuzzy"],
            "bm25, vector, hybrid",
        ),
        (vec!["search", "aero", "wing", "-k", "0"], "k must be"),
        (vec!["search", "aero", "wing", "-k", "100000"], "k must be"),
        (
            vec![
                "search",
                "aero",
                "wing",
                "--status",
                "tombstoned",
                "--mode",
                "bm25",
            ],
            "never retrievable",
        ),
        (
            vec!["search", "aero", "wing", "--model", "/nonexistent/model"],
            "nonexistent",
        ),
        // Without a model, vector search is refused with a hint, BM25 still works.
        (
            vec!["search", "aero", "wing", "--mode", "vector"],
            "embedder",
        ),
    ] {
        let out = provdb_without_models(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let after = json(&ok(provdb(&data, &["datanet", "show", "aero", "--json"])));
    assert_eq!(before, after);
    ok(provdb(&data, &["search", "aero", "wing", "--mode", "bm25"]));
    ok(provdb(&data, &["search", "aero", "wing", "--model", model]));
}

#[test]
fn index_config_shows_changes_and_refuses_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = setup(dir.path());
    let shown = json(&ok(provdb(&data, &["index", "config", "aero", "--json"])));
    assert_eq!(shown["hnsw"]["m"], 16);
    let changed = json(&ok(provdb(
        &data,
        &[
            "index",
            "config",
            "aero",
            "--ef-search",
            "128",
            "--exact-scan-max",
            "0",
            "--json",
        ],
    )));
    assert_eq!(changed["hnsw"]["ef_search"], 128);
    assert_eq!(changed["exact_scan_max"], 0);
    let bad = provdb(&data, &["index", "config", "aero", "--m", "1"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let again = json(&ok(provdb(&data, &["index", "config", "aero", "--json"])));
    assert_eq!(again, changed, "a refused change stores nothing");
    let rebuilt = ok(provdb(
        &data,
        &[
            "index",
            "rebuild",
            "aero",
            "--model",
            model.to_str().unwrap(),
        ],
    ));
    assert!(
        stdout(&rebuilt).contains("4 chunks (4 embedded)"),
        "{}",
        stdout(&rebuilt)
    );
    let out = json(&ok(provdb(
        &data,
        &[
            "search",
            "aero",
            "shock wave",
            "--mode",
            "vector",
            "--json",
            "--model",
            model.to_str().unwrap(),
        ],
    )));
    assert_eq!(out["hits"].as_array().unwrap().len(), 4);
}
