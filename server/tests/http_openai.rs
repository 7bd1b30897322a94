//! OpenAI's official Python client (PyPI `openai`, through scripts/openai-client.sh) against
//! `provdb serve` with the real SmolLM2 and MiniLM: model list, plain and streamed chat, a
//! cited answer whose split pays exactly the fee, citations in the stream's last chunk,
//! base64 embeddings decoded to unit vectors, and the client's own error classes.

use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::served::*;

#[test]
fn the_official_openai_client_chats_streams_cites_and_embeds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let key = make_key(&data, ALICE, "curator");
    ok(provdb(
        &data,
        &[
            "account",
            "credit",
            ALICE,
            "10000000000000000",
            "--reason",
            "test funds",
        ],
    ));
    let served = Served::start(&data, &[]);
    let (status, _) = served.call(
        "POST",
        "/v1/datanets",
        Some(&key),
        Some(&json!({"name": "wings"})),
    );
    assert_eq!(status, 201);
    let rows: String = [
        "The boundary layer thickens toward the trailing edge of the wing.",
        "Shock waves form on the upper surface at transonic speed.",
        "Heat transfer rises where the boundary layer becomes turbulent.",
    ]
    .iter()
    .map(|t| json!({"text": t}).to_string() + "\n")
    .collect();
    let (status, body) = read(
        served
            .request(
                "POST",
                "/v1/datanets/wings/records?format=jsonl",
                Some(&key),
            )
            .body(rows)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(3)),
        "{body}"
    );
    price_datanet(&served, &key, "wings", 1_000_000_000_000_000);

    let output = Command::new("bash")
        .arg(repo_root().join("scripts/openai-client.sh"))
        .env("PROVDB_URL", &served.url)
        .env("PROVDB_KEY", &key)
        .env("PROVDB_DATANET", "wings")
        .output()
        .unwrap();
    let seen = json(&ok(output));
    let models = seen["models"].as_array().unwrap();
    assert!(models[0].as_str().unwrap().contains("SmolLM2"), "{seen}");
    assert!(
        !seen["plain"]["content"].as_str().unwrap().is_empty(),
        "{seen}"
    );
    assert!(seen["plain"]["completion_tokens"].as_u64().unwrap() <= 12);
    assert!(
        seen["stream"]["pieces"].as_u64().unwrap() > 1,
        "streamed in pieces: {seen}"
    );
    assert!(["stop", "length"].contains(&seen["stream"]["finish_reason"].as_str().unwrap()));
    let cited = &seen["cited"];
    assert!(
        cited["answer_id"].as_str().unwrap().starts_with("0x"),
        "{seen}"
    );
    let paid: u128 = cited["split"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount_wei"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(
        paid, 1_000_000_000_000_000,
        "the split sums to the fee: {seen}"
    );
    assert!(
        !cited["citations"].as_array().unwrap().is_empty(),
        "loo attribution names the sources used: {seen}"
    );
    assert!(
        seen["stream_citations"].is_array(),
        "the stream's last chunk carries citations: {seen}"
    );
    assert_eq!(seen["embeddings"], json!([384, 384]));
    for norm in seen["embedding_norms"].as_array().unwrap() {
        assert!(
            (norm.as_f64().unwrap() - 1.0).abs() < 1e-3,
            "unit vectors: {seen}"
        );
    }
    assert_eq!(seen["unknown_model"], 404);
    assert_eq!(seen["bad_key"], 401);
    // The answers are in the ledger, and the chain of entries verifies.
    let (_, entries) = served.call("GET", "/v1/ledger/entries?limit=100", Some(&key), None);
    let answer = cited["answer_id"].as_str().unwrap();
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["answer_id"] == answer),
        "{entries}"
    );
    let (_, verify) = served.call("GET", "/v1/ledger/verify", Some(&key), None);
    assert_eq!(verify["ok"], true);
    assert!(
        served.terminate().success(),
        "SIGTERM ends the server cleanly"
    );
}
