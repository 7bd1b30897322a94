//! The command line as users drive it: exit codes, messages, JSON.

use crate::common::*;

#[test]
fn datanet_lifecycle_and_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let uninitialised = provdb(&data, &["datanet", "list"]);
    assert_eq!(uninitialised.status.code(), Some(1));
    assert!(
        stderr(&uninitialised).contains("provdb init"),
        "{}",
        stderr(&uninitialised)
    );

    ok(provdb(&data, &["init"]));
    ok(provdb(
        &data,
        &["datanet", "create", "notes", "--license", "MIT"],
    ));
    let again = provdb(&data, &["datanet", "create", "notes"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));

    let input = dir.path().join("notes.jsonl");
    std::fs::write(
        &input,
        format!("{{\"text\":\"one\",\"contributor\":\"{ALICE}\"}}\n{{\"text\":\"two\"}}\n"),
    )
    .unwrap();
    let ingest = json(&ok(provdb(
        &data,
        &[
            "ingest",
            "notes",
            input.to_str().unwrap(),
            "--contributor",
            ALICE,
            "--json",
        ],
    )));
    assert_eq!(ingest["accepted"], 2);
    assert_eq!(ingest["rejected"], 0);
    assert_eq!(ingest["sequence"], 2);

    let show = json(&ok(provdb(&data, &["datanet", "show", "notes", "--json"])));
    assert_eq!(
        (
            show["name"].as_str(),
            show["records"].as_u64(),
            show["chunks"].as_u64(),
            show["contributors"].as_u64()
        ),
        (Some("notes"), Some(2), Some(2), Some(1))
    );
    let list = json(&ok(provdb(&data, &["datanet", "list", "--json"])));
    assert_eq!(list["datanets"][0]["name"], "notes");

    let records = json(&ok(provdb(&data, &["records", "notes", "--json"])));
    let first = &records["records"][0];
    for column in [
        "record_id",
        "contributor",
        "signature",
        "license",
        "created_at",
        "version",
        "supersedes",
        "quality",
        "status",
    ] {
        assert!(first.get(column).is_some(), "missing {column}: {first}");
    }
    assert_eq!(first["license"], "MIT");
    assert_eq!(first["content"]["text"], "one");

    let unknown = provdb(&data, &["datanet", "show", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    let usage = provdb(&data, &["ingest"]);
    assert_eq!(
        usage.status.code(),
        Some(1),
        "a usage error is a user error"
    );
}

#[test]
fn a_bad_line_fails_the_file_and_skip_invalid_writes_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "d"]));
    let input = dir.path().join("in.jsonl");
    let lines = [
        format!("{{\"text\":\"a\",\"contributor\":\"{ALICE}\"}}"),
        format!("{{\"text\":\"b\",\"contributor\":\"{ALICE}\",\"quality\":7}}"),
        format!("{{\"text\":\"c\",\"contributor\":\"{ALICE}\"}}"),
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let failed = provdb(&data, &["ingest", "d", input.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1));
    let message = stderr(&failed);
    assert!(
        message.contains("line 2") && message.contains("quality") && message.contains("in.jsonl"),
        "{message}"
    );
    assert_eq!(
        json(&ok(provdb(&data, &["datanet", "show", "d", "--json"])))["records"],
        0
    );

    let skipped = json(&ok(provdb(
        &data,
        &[
            "ingest",
            "d",
            input.to_str().unwrap(),
            "--skip-invalid",
            "--json",
        ],
    )));
    assert_eq!(
        (skipped["accepted"].as_u64(), skipped["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let rejects = std::fs::read_to_string(dir.path().join("in.jsonl.rejects.jsonl")).unwrap();
    assert!(
        rejects.contains("\"line\":2") && rejects.contains("quality"),
        "{rejects}"
    );
    assert_eq!(
        json(&ok(provdb(&data, &["datanet", "show", "d", "--json"])))["records"],
        2
    );
}

#[test]
fn the_demo_ingests_signed_cranfield() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let collection = repo_root().join("data/cranfield");
    let output = ok(provdb(
        &data,
        &[
            "demo",
            "--collection",
            collection.to_str().unwrap(),
            "--limit",
            "300",
        ],
    ));
    let text = stdout(&output);
    assert!(text.contains("300 records"), "{text}");
    // The rest of the demo: indexed, answered with a paid split, verified, closed.
    assert!(
        text.contains("chunks indexed") || text.contains("embedded"),
        "{text}"
    );
    assert!(text.contains("| model_owner |"), "{text}");
    assert!(text.contains("ledger ok"), "{text}");
    assert!(text.contains("epoch 1:"), "{text}");
    let show = json(&ok(provdb(
        &data,
        &["datanet", "show", "cranfield", "--json"],
    )));
    assert_eq!(show["records"], 300);
    assert_eq!(show["require_signatures"], true);
    assert!(show["contributors"].as_u64().unwrap() > 100, "{show}");
    let records = json(&ok(provdb(
        &data,
        &["records", "cranfield", "--limit", "3", "--json"],
    )));
    assert!(records["records"][0]["signature"].as_str().unwrap().len() == 132);
}

#[test]
fn embed_prints_unit_vectors_and_names_a_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = ok(provdb(
        dir.path(),
        &["embed", "boundary layer", "shock wave", "--json"],
    ));
    let embeddings = json(&output)["embeddings"].as_array().unwrap().clone();
    assert_eq!(embeddings.len(), 2);
    for vector in &embeddings {
        let values: Vec<f64> = vector
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(values.len(), 384);
        let norm: f64 = values.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    let missing = provdb(
        dir.path(),
        &[
            "embed",
            "x",
            "--model",
            dir.path().join("nowhere").to_str().unwrap(),
        ],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("config.json"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn generate_streams_an_answer_and_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let output = ok(provdb(
        dir.path(),
        &[
            "generate",
            "What is the capital of France?",
            "--max-tokens",
            "12",
        ],
    ));
    assert!(stdout(&output).contains("Paris"), "{}", stdout(&output));
    let bad = provdb(dir.path(), &["generate", "x", "--top-p", "2"]);
    assert_eq!(bad.status.code(), Some(1));
    let missing = provdb(
        dir.path(),
        &[
            "generate",
            "x",
            "--model",
            dir.path().join("none.gguf").to_str().unwrap(),
        ],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("none.gguf"),
        "{}",
        stderr(&missing)
    );
}
