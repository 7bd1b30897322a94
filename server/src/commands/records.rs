//! `provdb records NAME` and `provdb record status|remove`.

use std::path::Path;

use clap::{Args, Subcommand};
use provdb::{Address, Db, RecordId, Status};

use crate::cli::options::StatusArg;
use crate::output::{print_json, print_table};
use crate::views::RecordView;

/// `provdb records`.
#[derive(Debug, Args)]
pub(crate) struct RecordsArgs {
    /// Datanet name.
    name: String,
    /// At most this many records.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// `provdb record`.
#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Set the curation status: pending, approved, rejected or slashed.
    Status {
        /// Record id (0x...).
        id: RecordId,
        /// New status.
        #[arg(value_enum)]
        status: StatusArg,
    },
    /// Remove a record: a tombstone version supersedes it, history stays.
    Remove {
        /// Record id (0x...).
        id: RecordId,
        /// Who removes it: the record's contributor, or the owner or a curator of its Datanet.
        #[arg(long)]
        by: Address,
    },
}

pub(crate) fn list(data: &Path, json: bool, args: RecordsArgs) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let records = db.records(&args.name, args.limit)?;
    let views: Vec<RecordView> = records
        .iter()
        .map(|r| RecordView::new(r, &args.name))
        .collect();
    if json {
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
            let status = Status::from(status);
            let sequence = db.set_status(&id, status)?;
            println!(
                "record {id} is now {} (sequence {sequence})",
                status.as_str()
            );
        }
        RecordCommand::Remove { id, by } => {
            let sequence = db.tombstone(&id, provdb::Committer::Principal(by))?;
            println!("record {id} removed by a tombstone (sequence {sequence})");
        }
    }
    Ok(())
}
