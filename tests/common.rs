//! Helpers shared by the engine tests.

use std::path::{Path, PathBuf};

use provdb::storage::record_id_of;
use provdb::{Address, Datanet, Db, RecordId};
use serde_json::{Map, Value};

pub(crate) const ALICE_KEY: [u8; 32] = [0x11; 32];
pub(crate) const BOB_KEY: [u8; 32] = [0x22; 32];

pub(crate) fn address(key: &[u8; 32]) -> Address {
    provdb::ingest::address_of_key(key).unwrap()
}

pub(crate) fn fresh_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::init(dir.path().join("data")).unwrap();
    (dir, db)
}

pub(crate) fn datanet(db: &Db, name: &str, require_signatures: bool) {
    let mut spec = Datanet::new(name);
    spec.require_signatures = require_signatures;
    spec.license = "CC-BY-4.0".into();
    db.create_datanet(spec).unwrap();
}

/// The record id provdb will give a row whose content columns are `content`.
pub(crate) fn id_of(content: &Value) -> RecordId {
    let Value::Object(map) = content else {
        panic!("not an object")
    };
    record_id_of(&provdb::ingest::canonical_object(map))
}

/// The creation time `sign_row` gives a row that has none (a signature covers it).
pub(crate) const SIGNED_AT_MS: i64 = 1_700_000_000_000;

/// Signs `row` (content columns, and any of `license`, `created_at`, `supersedes`) by `key` as
/// its contributor, as EIP-712 typed data for Datanet `datanet` on chain 1: sets
/// `contributor`, `license` (`datanet()`'s CC-BY-4.0) and `created_at` (`SIGNED_AT_MS`) when
/// missing, then `signature` over them.
pub(crate) fn sign_row(row: &mut Value, key: &[u8; 32], datanet: &str) {
    let object = row.as_object_mut().unwrap();
    for column in ["contributor", "signature", "record_id"] {
        object.remove(column);
    }
    let license = object
        .entry("license")
        .or_insert_with(|| "CC-BY-4.0".into())
        .as_str()
        .unwrap()
        .to_string();
    let created_at_ms = object
        .entry("created_at")
        .or_insert_with(|| SIGNED_AT_MS.into())
        .as_i64()
        .unwrap();
    let supersedes = object
        .get("supersedes")
        .map(|s| s.as_str().unwrap().parse().unwrap());
    let mut content = object.clone();
    for column in provdb::ingest::PROVENANCE_COLUMNS {
        content.remove(column);
    }
    let fields = provdb::ingest::SignedFields {
        datanet,
        chain_id: 1,
        record_id: record_id_of(&provdb::ingest::canonical_object(&content)),
        license: &license,
        created_at_ms,
        supersedes,
    };
    let signature = provdb::ingest::sign_record(key, &fields).unwrap();
    object.insert("contributor".into(), address(key).to_string().into());
    object.insert(
        "signature".into(),
        format!("0x{}", hex::encode(signature)).into(),
    );
}

/// A row with `content`, signed by `key` as its contributor for Datanet `datanet` (see
/// `sign_row`).
pub(crate) fn signed_row(content: Value, key: &[u8; 32], datanet: &str) -> Value {
    let mut row = content;
    sign_row(&mut row, key, datanet);
    row
}

/// A row with `content`, signed by `key` under the old scheme: EIP-191 over the record id.
pub(crate) fn eip191_signed_row(content: Value, key: &[u8; 32]) -> Value {
    let id = id_of(&content);
    let signature = provdb::ingest::sign_record_id(key, &id).unwrap();
    let mut row: Map<String, Value> = content.as_object().unwrap().clone();
    row.insert("contributor".into(), address(key).to_string().into());
    row.insert(
        "signature".into(),
        format!("0x{}", hex::encode(signature)).into(),
    );
    Value::Object(row)
}

pub(crate) fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

pub(crate) fn write_rows(dir: &Path, name: &str, rows: &[Value]) -> PathBuf {
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    write_lines(dir, name, &lines)
}

pub(crate) fn record_count(db: &Db, name: &str) -> u64 {
    db.datanet_info(name).unwrap().stats.records
}
