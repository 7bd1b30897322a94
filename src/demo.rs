//! The demo Datanet: a SMART collection (Cranfield) turned into signed JSONL records.
//!
//! Each document becomes a record with columns `doc_id`, `title`, `authors`, `bibliography`
//! and `text` (the text column). Its contributor is its `.A` author string, with the
//! deterministic demo key `keccak256("provdb-demo:" + author)`; every record is signed with
//! that key for real, as EIP-712 typed data for the Datanet it is meant for (see
//! `ingest::signature`), with license [`DEMO_LICENSE`], creation time [`DEMO_CREATED_AT_MS`]
//! and the default chain id, all written into the row. These keys are public knowledge: demo
//! only.

use std::io::Write;
use std::path::Path;

use provdb_storage::{Address, DEFAULT_CHAIN_ID, keccak256, record_id_of};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ingest::{SignedFields, address_of_key, canonical_object, sign_record};
use crate::smart::{SmartDoc, normalise_author};

/// The license demo records are signed and stored with.
pub const DEMO_LICENSE: &str = "MIT";

/// The creation time demo records are signed and stored with (2023-11-14, ms): fixed, so the
/// demo's records and signatures are the same on every run.
pub const DEMO_CREATED_AT_MS: i64 = 1_700_000_000_000;

/// The demo private key of an author (public: never use for real funds).
pub fn demo_key(author: &str) -> [u8; 32] {
    keccak256(format!("provdb-demo:{author}").as_bytes())
}

/// The content columns of a document: `doc_id` and `text` always (Cranfield has two documents
/// with no text at all: they become records without chunks), the others when not empty.
pub fn document_content(doc: &SmartDoc) -> Map<String, Value> {
    let mut content = Map::new();
    content.insert("doc_id".into(), Value::from(doc.id));
    content.insert("text".into(), Value::String(doc.text.clone()));
    for (name, value) in [
        ("title", &doc.title),
        ("authors", &doc.authors),
        ("bibliography", &doc.bibliography),
    ] {
        if !value.is_empty() {
            content.insert(name.into(), Value::String(value.clone()));
        }
    }
    content
}

/// A document as an input row signed for Datanet `datanet`: its content plus `contributor`,
/// `license`, `created_at` and `signature`.
pub fn signed_row(doc: &SmartDoc, datanet: &str) -> Result<Map<String, Value>> {
    let mut row = document_content(doc);
    let key = demo_key(&normalise_author(&doc.authors));
    let record_id = record_id_of(&canonical_object(&row));
    let fields = SignedFields {
        datanet,
        chain_id: DEFAULT_CHAIN_ID,
        record_id,
        license: DEMO_LICENSE,
        created_at_ms: DEMO_CREATED_AT_MS,
        supersedes: None,
    };
    let signature = sign_record(&key, &fields)?;
    let contributor: Address = address_of_key(&key)?;
    row.insert("contributor".into(), Value::String(contributor.to_string()));
    row.insert("license".into(), Value::String(DEMO_LICENSE.into()));
    row.insert("created_at".into(), Value::from(DEMO_CREATED_AT_MS));
    row.insert(
        "signature".into(),
        Value::String(format!("0x{}", hex::encode(signature))),
    );
    Ok(row)
}

/// Writes every document as one JSONL line signed for Datanet `datanet`; returns the number
/// written.
pub fn write_signed_jsonl(docs: &[SmartDoc], datanet: &str, path: &Path) -> Result<usize> {
    let file = fs_err::File::create(path).map_err(Error::io(path))?;
    let mut out = std::io::BufWriter::new(file);
    let mut written = 0;
    for doc in docs {
        let row = signed_row(doc, datanet)?;
        serde_json::to_writer(&mut out, &row).map_err(|e| Error::Internal(e.to_string()))?;
        out.write_all(b"\n").map_err(Error::io(path))?;
        written += 1;
    }
    out.flush().map_err(Error::io(path))?;
    Ok(written)
}
