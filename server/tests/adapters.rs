//! `provdb adapter add|list|remove|random` and `--adapter` on `generate` and `ask`, with the
//! real SmolLM2: content-addressed ids, a refused adapter that stores nothing, answers that
//! record their adapters in the ledger, and a removed adapter that is no longer served.

use crate::common::*;

#[test]
fn adapters_are_added_listed_served_recorded_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let folders = dir.path().join("peft");
    ok(provdb(&data, &["init"]));
    ok(provdb(
        &data,
        &[
            "adapter",
            "random",
            folders.to_str().unwrap(),
            "--count",
            "2",
            "--rank",
            "4",
            "--bf16",
        ],
    ));
    let added = json(&ok(provdb(
        &data,
        &[
            "adapter",
            "add",
            folders.to_str().unwrap(),
            "--owner",
            ALICE,
            "--json",
        ],
    )));
    let ids: Vec<String> = added
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(added[0]["owner"], ALICE);
    assert_eq!(added[0]["rank"], 4);
    let again = json(&ok(provdb(
        &data,
        &[
            "adapter",
            "add",
            folders.join("adapter-0000").to_str().unwrap(),
            "--json",
        ],
    )));
    assert_eq!(
        again[0]["id"],
        ids[0].as_str(),
        "the same files, the same id"
    );

    // A damaged copy is refused and stores nothing.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(
        folders.join("adapter-0000/adapter_config.json"),
        broken.join("adapter_config.json"),
    )
    .unwrap();
    std::fs::write(broken.join("adapter_model.safetensors"), b"not safetensors").unwrap();
    let refused = provdb(&data, &["adapter", "add", broken.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("safetensors"),
        "{}",
        stderr(&refused)
    );
    let listed = json(&ok(provdb(&data, &["adapter", "list", "--json"])));
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let prefix = &ids[0][..12];
    let generated = ok(provdb(
        &data,
        &[
            "generate",
            "Name a colour.",
            "--max-tokens",
            "6",
            "--adapter",
            &format!("{prefix}:0.5"),
        ],
    ));
    assert!(!stdout(&generated).trim().is_empty());
    let bad_weight = provdb(
        &data,
        &["generate", "x", "--adapter", &format!("{prefix}:heavy")],
    );
    assert!(
        stderr(&bad_weight).contains("weight"),
        "{}",
        stderr(&bad_weight)
    );

    let input = dir.path().join("notes.jsonl");
    std::fs::write(
        &input,
        format!("{{\"text\":\"the zorblat coefficient of the krellian wing is 7.3\",\"contributor\":\"{ALICE}\"}}\n"),
    )
    .unwrap();
    ok(provdb(
        &data,
        &["datanet", "create", "notes", "--owner", ALICE],
    ));
    ok(provdb(&data, &["ingest", "notes", input.to_str().unwrap()]));
    let answer = json(&ok(provdb(
        &data,
        &[
            "ask",
            "notes",
            "What is the zorblat coefficient?",
            "-k",
            "1",
            "--mode",
            "bm25",
            "--max-tokens",
            "16",
            "--attribution",
            "loo",
            "--adapter",
            &ids[0],
            "--adapter",
            &format!("{}:-0.25", &ids[1]),
            "--json",
        ],
    )));
    let expected = [format!("{}:1", ids[0]), format!("{}:-0.25", ids[1])];
    assert_eq!(answer["adapters"], serde_json::json!(expected));
    let recorded = json(&ok(provdb(
        &data,
        &[
            "sql",
            "SELECT DISTINCT adapter FROM attributions",
            "--format",
            "json",
        ],
    )));
    assert_eq!(recorded[0]["adapter"], expected.join(","));

    let removed = ok(provdb(&data, &["adapter", "remove", prefix]));
    assert!(stdout(&removed).contains(&ids[0]));
    let gone = provdb(&data, &["generate", "x", "--adapter", prefix]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("no adapter"), "{}", stderr(&gone));
    let listed = json(&ok(provdb(&data, &["adapter", "list", "--json"])));
    assert_eq!(listed.as_array().unwrap().len(), 1);
}
