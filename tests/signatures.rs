//! Signatures with real secp256k1 keys: EIP-712 typed data over the Datanet, record id,
//! license, created_at and supersedes; EIP-191 over the record id only where a Datanet created
//! before EIP-712 still accepts it.

use provdb::{Datanet, Error, IngestOptions, SignatureScheme};
use serde_json::{Value, json};

use crate::common::*;

fn ingest_into(
    db: &provdb::Db,
    dir: &std::path::Path,
    name: &str,
    row: Value,
) -> Result<provdb::IngestReport, Error> {
    let path = write_rows(dir, &format!("{name}-row.jsonl"), &[row]);
    db.ingest_file(name, &path, &IngestOptions::default())
}

fn ingest_one(
    row: Value,
) -> (
    tempfile::TempDir,
    provdb::Db,
    Result<provdb::IngestReport, Error>,
) {
    let (dir, db) = fresh_db();
    datanet(&db, "signed", true);
    let result = ingest_into(&db, dir.path(), "signed", row);
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
fn a_valid_signature_is_accepted_and_marked_eip712() {
    let content = json!({"text": "signed by alice"});
    let (_dir, db, result) = ingest_one(signed_row(content.clone(), &ALICE_KEY, "signed"));
    assert_eq!(result.unwrap().accepted, 1);
    assert_eq!(record_count(&db, "signed"), 1);
    let record = db.record(&id_of(&content)).unwrap().unwrap();
    assert_eq!(record.signature_scheme, Some(SignatureScheme::Eip712));
    assert_eq!(record.created_at_ms, SIGNED_AT_MS);
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let mut row = signed_row(json!({"text": "claimed by alice"}), &BOB_KEY, "signed");
    row["contributor"] = json!(address(&ALICE_KEY).to_string());
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, &format!("made by {}", address(&BOB_KEY)));
    assert_eq!(record_count(&db, "signed"), 0);
}

#[test]
fn a_signature_over_other_content_is_refused() {
    let mut row = signed_row(json!({"text": "original"}), &ALICE_KEY, "signed");
    row["text"] = json!("tampered");
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, "not by the contributor");
    assert_eq!(record_count(&db, "signed"), 0);
}

/// An uploader holding Alice's signed row changes what the signature covers besides the
/// content: each change is refused, and the row as signed still goes in afterwards.
#[test]
fn changing_license_created_at_or_supersedes_of_a_signed_row_is_refused() {
    let (dir, db) = fresh_db();
    datanet(&db, "signed", true);
    let first = signed_row(json!({"text": "alice v1"}), &ALICE_KEY, "signed");
    ingest_into(&db, dir.path(), "signed", first).unwrap();
    let signed = signed_row(json!({"text": "alice's paper"}), &ALICE_KEY, "signed");
    let changes = [
        ("license", json!("proprietary")),
        ("created_at", json!(SIGNED_AT_MS - 86_400_000)),
        (
            "supersedes",
            json!(id_of(&json!({"text": "alice v1"})).to_string()),
        ),
    ];
    for (column, value) in changes {
        let mut forged = signed.clone();
        forged[column] = value;
        let result = ingest_into(&db, dir.path(), "signed", forged);
        refused_on_signature(result, "EIP-712 signature was made by");
    }
    let mut undated = signed.clone();
    undated.as_object_mut().unwrap().remove("created_at");
    refused_on_signature(
        ingest_into(&db, dir.path(), "signed", undated),
        "give the created_at that was signed",
    );
    assert_eq!(record_count(&db, "signed"), 1);
    ingest_into(&db, dir.path(), "signed", signed).unwrap();
    let record = db
        .record(&id_of(&json!({"text": "alice's paper"})))
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.license.as_str(), record.supersedes),
        ("CC-BY-4.0", None)
    );
}

#[test]
fn a_signed_row_replayed_into_another_datanet_is_refused() {
    let (dir, db) = fresh_db();
    datanet(&db, "signed", true);
    datanet(&db, "elsewhere", false);
    let row = signed_row(json!({"text": "for signed only"}), &ALICE_KEY, "signed");
    let result = ingest_into(&db, dir.path(), "elsewhere", row.clone());
    refused_on_signature(result, "datanet 'elsewhere'");
    assert_eq!(record_count(&db, "elsewhere"), 0);
    ingest_into(&db, dir.path(), "signed", row).unwrap();
}

#[test]
fn a_signature_for_another_chain_is_refused() {
    let (dir, db) = fresh_db();
    let mut spec = Datanet::new("goerli");
    spec.require_signatures = true;
    spec.license = "CC-BY-4.0".into();
    spec.signatures.chain_id = 5;
    db.create_datanet(spec).unwrap();
    let row = signed_row(json!({"text": "signed on chain 1"}), &ALICE_KEY, "goerli");
    refused_on_signature(ingest_into(&db, dir.path(), "goerli", row), "chain id 5");
    assert_eq!(db.datanet_info("goerli").unwrap().chain_id, 5);
}

#[test]
fn eip191_is_refused_by_a_new_datanet_and_accepted_by_an_old_one() {
    let content = json!({"text": "personal_sign"});
    let (dir, db, result) = ingest_one(eip191_signed_row(content.clone(), &ALICE_KEY));
    refused_on_signature(result, "requires EIP-712");
    assert_eq!(record_count(&db, "signed"), 0);
    assert_eq!(
        db.datanet_info("signed").unwrap().signature_schemes,
        ["eip712"]
    );

    let mut old = Datanet::new("old");
    old.require_signatures = true;
    old.signatures.accepts_eip191 = true;
    db.create_datanet(old).unwrap();
    ingest_into(
        &db,
        dir.path(),
        "old",
        eip191_signed_row(content.clone(), &ALICE_KEY),
    )
    .unwrap();
    let record = db.record(&id_of(&content)).unwrap().unwrap();
    assert_eq!(record.signature_scheme, Some(SignatureScheme::Eip191));
    let typed = signed_row(json!({"text": "typed"}), &ALICE_KEY, "old");
    ingest_into(&db, dir.path(), "old", typed).unwrap();
    let record = db
        .record(&id_of(&json!({"text": "typed"})))
        .unwrap()
        .unwrap();
    assert_eq!(record.signature_scheme, Some(SignatureScheme::Eip712));
}

#[test]
fn malformed_signatures_are_refused() {
    for (bad, needle) in [("0xnothex", "not hex"), ("0x1234", "65 bytes")] {
        let mut row = signed_row(json!({"text": "x"}), &ALICE_KEY, "signed");
        row["signature"] = json!(bad);
        let (_dir, _db, result) = ingest_one(row);
        refused_on_signature(result, needle);
    }
    let mut row = signed_row(json!({"text": "x"}), &ALICE_KEY, "signed");
    row["signature"] = json!(format!("0x{}", "00".repeat(65)));
    let (_dir, _db, result) = ingest_one(row);
    assert!(
        matches!(result, Err(Error::Input { .. })),
        "an all-zero signature is invalid"
    );
}

#[test]
fn a_missing_signature_is_refused_where_required() {
    let mut row = signed_row(json!({"text": "unsigned"}), &ALICE_KEY, "signed");
    row.as_object_mut().unwrap().remove("signature");
    let (_dir, db, result) = ingest_one(row);
    refused_on_signature(result, "requires signed records");
    assert_eq!(record_count(&db, "signed"), 0);
}
