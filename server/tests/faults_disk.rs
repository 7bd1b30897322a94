//! A full disk (a file-size limit, `RLIMIT_FSIZE`, on the `provdb` process: every write past it
//! fails with `EFBIG`, as a disk without space fails with `ENOSPC`): the ingest that hits it
//! fails with a clear error and stores nothing of its file, what was stored before is intact,
//! and once there is room again the same file ingests. The server hit by it answers the upload
//! with an error naming the cause and goes on serving reads.

use std::path::Path;
use std::process::{Command, Output};

use provdb::Db;
use provdb::storage::record_id_of;
use serde_json::{Map, Value, json};

use crate::common::*;
use crate::served::*;

/// A JSONL file of `n` records of about 2 KiB each; returns it with the records' ids.
fn records(path: &Path, n: usize, tag: &str) -> Vec<provdb::storage::RecordId> {
    let mut lines = String::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let text = format!("{tag} record {i} ") + &"boundary layer separation ".repeat(80);
        let mut map = Map::new();
        map.insert("text".into(), Value::String(text));
        ids.push(record_id_of(&provdb::ingest::canonical_object(&map)));
        map.insert("contributor".into(), Value::String(ALICE.into()));
        lines.push_str(&Value::Object(map).to_string());
        lines.push('\n');
    }
    std::fs::write(path, lines).unwrap();
    ids
}

/// `provdb ARGS` with every file it writes limited to `limit_kib` KiB.
fn provdb_on_a_full_disk(data: &Path, limit_kib: u64, args: &[&str]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_kib}; exec \"$0\" --data \"$1\" \"${{@:2}}\""
        ))
        .arg(env!("CARGO_BIN_EXE_provdb"))
        .arg(data)
        .args(args)
        .env_remove("PROVDB_DATA")
        .env("PROVDB_MODELS", "/nonexistent/provdb-models")
        .output()
        .unwrap()
}

fn present(data: &Path, ids: &[provdb::storage::RecordId]) -> usize {
    let db = Db::open(data).unwrap();
    let found = db.store().existing_records(ids).unwrap();
    found.into_iter().filter(|p| *p).count()
}

#[test]
fn a_full_disk_fails_the_ingest_whole_and_loses_nothing_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    ok(provdb(&data, &["datanet", "create", "d"]));
    let small = dir.path().join("small.jsonl");
    let small_ids = records(&small, 20, "small");
    ok(provdb_without_models(
        &data,
        &["ingest", "d", small.to_str().unwrap(), "--no-index"],
    ));
    let big = dir.path().join("big.jsonl");
    let big_ids = records(&big, 3000, "big");

    let full = provdb_on_a_full_disk(
        &data,
        2048,
        &["ingest", "d", big.to_str().unwrap(), "--no-index"],
    );
    assert_eq!(full.status.code(), Some(2), "{}", stderr(&full));
    let message = stderr(&full);
    assert!(
        message.contains("File too large"),
        "the cause is named: {message}"
    );
    assert_eq!(
        present(&data, &small_ids),
        small_ids.len(),
        "stored data intact"
    );
    assert_eq!(present(&data, &big_ids), 0, "nothing of the failed file");
    let shown = json(&ok(provdb(&data, &["datanet", "show", "d", "--json"])));
    assert_eq!(shown["records"], small_ids.len(), "{shown}");

    // Room again: the same file goes in whole, and the sequence counts two batches.
    ok(provdb_without_models(
        &data,
        &["ingest", "d", big.to_str().unwrap(), "--no-index"],
    ));
    assert_eq!(present(&data, &big_ids), big_ids.len());
    let shown = json(&ok(provdb(&data, &["datanet", "show", "d", "--json"])));
    assert_eq!(shown["records"], small_ids.len() + big_ids.len(), "{shown}");
}

#[test]
fn a_server_on_a_full_disk_refuses_the_upload_clearly_and_keeps_serving_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let key = make_key(&data, ALICE, "curator");
    ok(provdb(&data, &["datanet", "create", "d"]));
    let first = dir.path().join("first.jsonl");
    let first_ids = records(&first, 2500, "first");
    let second = dir.path().join("second.jsonl");
    let second_ids = records(&second, 1500, "second");
    let upload = |served: &Served, path: &Path| {
        read(
            served
                .request("POST", "/v1/datanets/d/records?format=jsonl", Some(&key))
                .body(std::fs::read(path).unwrap())
                .send()
                .unwrap(),
        )
    };

    // 8 MiB per file: the first upload fits the write-ahead log, the second overflows it.
    let served = Served::start_limited(&data, 8192);
    let (status, body) = upload(&served, &first);
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(&served, &second);
    assert_eq!(status, 507, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("disk is full"), "{message}");
    let (status, body) = served.call(
        "POST",
        "/v1/search",
        Some(&key),
        Some(&json!({"datanet": "d", "query": "boundary layer", "k": 3, "mode": "bm25"})),
    );
    assert_eq!(status, 200, "reads go on: {body}");
    assert_eq!(body["hits"].as_array().map(Vec::len), Some(3), "{body}");
    let (status, body) = served.call(
        "POST",
        "/v1/sql",
        Some(&key),
        Some(&json!({"query": "SELECT count(*) AS n FROM records"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], first_ids.len(), "{body}");
    drop(served); // SIGKILL: the acknowledged upload must survive it too
    assert_eq!(
        present(&data, &first_ids),
        first_ids.len(),
        "acknowledged upload kept"
    );
    assert_eq!(present(&data, &second_ids), 0, "nothing of the refused one");
}
