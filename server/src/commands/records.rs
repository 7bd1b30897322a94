//! `provdb records NAME` and `provdb record status|remove`.

use std::path::Path;

use provdb::storage::Record;
use provdb::{Address, Db, RecordId, Status};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{RecordCommand, RecordsArgs};
use crate::output::{parse_arg, print_json, print_table};

/// A record as the CLI prints it: every provenance column, content as JSON.
#[derive(Serialize)]
pub(crate) struct RecordView {
    record_id: String,
    datanet: String,
    contributor: String,
    signature: Option<String>,
    license: String,
    created_at: i64,
    version: u32,
    supersedes: Option<String>,
    quality: Option<f32>,
    status: &'static str,
    sequence: u64,
    chunks: u32,
    content: Value,
}

impl RecordView {
    pub(crate) fn new(record: &Record, datanet: &str) -> Self {
        Self {
            record_id: record.record_id.to_string(),
            datanet: datanet.to_string(),
            contributor: record.contributor.to_string(),
            signature: record
                .signature
                .as_ref()
                .map(|s| format!("0x{}", hex::encode(s))),
            license: record.license.clone(),
            created_at: record.created_at_ms,
            version: record.version,
            supersedes: record.supersedes.map(|s| s.to_string()),
            quality: record.quality,
            status: record.status.as_str(),
            sequence: record.sequence,
            chunks: record.chunk_count(),
            content: serde_json::from_str(&record.content)
                .unwrap_or(Value::String(record.content.clone())),
        }
    }
}

pub(crate) fn list(data: &Path, args: RecordsArgs) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let records = db.records(&args.name, args.limit)?;
    let views: Vec<RecordView> = records
        .iter()
        .map(|r| RecordView::new(r, &args.name))
        .collect();
    if args.json {
        return print_json(&serde_json::json!({ "datanet": args.name, "records": views }));
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.record_id.clone(),
                v.contributor.clone(),
                v.version.to_string(),
                v.status.to_string(),
                v.license.clone(),
                if v.signature.is_some() {
                    "yes".into()
                } else {
                    "no".into()
                },
                v.chunks.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "record_id",
            "contributor",
            "version",
            "status",
            "license",
            "signed",
            "chunks",
        ],
        &rows,
    );
    Ok(())
}

pub(crate) fn change(data: &Path, command: RecordCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        RecordCommand::Status { id, status } => {
            let id: RecordId = parse_arg(&id, "record id")?;
            let status: Status = parse_arg(&status, "status")?;
            let sequence = db.set_status(&id, status)?;
            println!(
                "record {id} is now {} (sequence {sequence})",
                status.as_str()
            );
        }
        RecordCommand::Remove { id, by } => {
            let id: RecordId = parse_arg(&id, "record id")?;
            let by: Address = parse_arg(&by, "address")?;
            let sequence = db.tombstone(&id, by)?;
            println!("record {id} removed by a tombstone (sequence {sequence})");
        }
    }
    Ok(())
}
