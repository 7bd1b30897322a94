//! EIP-191 signatures with real secp256k1 keys.

use provdb::{Error, IngestOptions};
use serde_json::json;

use crate::common::*;

fn ingest_one(
    row: serde_json::Value,
) -> (
    tempfile::TempDir,
    provdb::Db,
    Result<provdb::IngestReport, Error>,
) {
    let (dir, db) = fresh_db();
    datanet(&db, "signed", true);
    let path = write_rows(dir.path(), "row.jsonl", &[row]);
    let result = db.ingest_file("signed", &path, &IngestOptions::default());
    (dir, db, result)
}

fn refused_on_signature(result: Result<provdb::IngestReport, Error>, needle: &str) {
    match result {
        Err(Error::Input { column, reason, .. }) => {
            assert_eq!(column.as_deref(), Some("signature"));
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("expected a signature refusal, got {other:?}"),
    }
}

#[test]
fn a_valid_signature_is_accepted() {
    let (_dir, db, result) = ingest_one(signed_row(json!({"text": "signed by alice"}), &ALICE_KEY));
    assert_eq!(result.unwrap().accepted, 1);
    assert_eq!(record_count(&db, "signed"), 1);
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let mut row = signed_row(json!({"text": "claimed by alice"}), &BOB_KEY);
    row["contributor"] = json!(address(&ALICE_KEY).to_string());
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, &format!("made by {}", address(&BOB_KEY)));
    assert_eq!(record_count(&db, "signed"), 0);
}

#[test]
fn a_signature_over_other_content_is_refused() {
    let mut row = signed_row(json!({"text": "original"}), &ALICE_KEY);
    row["text"] = json!("tampered");
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, "not by the contributor");
    assert_eq!(record_count(&db, "signed"), 0);
}

#[test]
fn malformed_signatures_are_refused() {
    for (bad, needle) in [("0xnothex", "not hex"), ("0x1234", "65 bytes")] {
        let mut row = signed_row(json!({"text": "x"}), &ALICE_KEY);
        row["signature"] = json!(bad);
        let (_dir, _db, result) = ingest_one(row);
        refused_on_signature(result, needle);
    }
    let mut row = signed_row(json!({"text": "x"}), &ALICE_KEY);
    row["signature"] = json!(format!("0x{}", "00".repeat(65)));
    let (_dir, _db, result) = ingest_one(row);
    assert!(
        matches!(result, Err(Error::Input { .. })),
        "an all-zero signature is invalid"
    );
}

#[test]
fn a_missing_signature_is_refused_where_required() {
    let mut row = signed_row(json!({"text": "unsigned"}), &ALICE_KEY);
    row.as_object_mut().unwrap().remove("signature");
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, "requires signed records");
    assert_eq!(record_count(&db, "signed"), 0);
}
