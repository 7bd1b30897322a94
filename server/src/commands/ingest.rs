//! `provdb ingest NAME FILE...`: each file is its own all-or-nothing batch. A line
//! `ingested FILE: ... sequence N` is printed (and flushed) as soon as a file is committed, so
//! whoever reads stdout knows exactly which files are durable. Then the Datanet's index
//! catches up (BM25 and filters; vectors when an embedder model is present), and a line
//! `indexed N chunks ...` follows; `--no-index` leaves that to the next search.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use provdb::{Address, Db, IngestOptions, IngestReport};
use serde::Serialize;

use crate::cli::options::EmbedderArgs;
use crate::output::{print_json, progress};

/// `provdb ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Datanet name.
    name: String,
    /// Input files (.jsonl, .csv, .parquet).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Contributor of rows without a `contributor` column.
    #[arg(long)]
    contributor: Option<Address>,
    /// Store the valid rows and write the others to a rejects file.
    #[arg(long)]
    skip_invalid: bool,
    /// Only store; the index catches up on the next search.
    #[arg(long)]
    no_index: bool,
    /// Most bytes one row may decode to (a JSONL line; a CSV or Parquet row as JSON).
    #[arg(long, default_value_t = IngestOptions::default().max_record_bytes)]
    max_record_bytes: usize,
    /// Most bytes one file's rows may decode to, in MiB; a file over it is refused whole.
    #[arg(long, default_value_t = IngestOptions::default().max_decoded_bytes >> 20)]
    max_decoded_mb: u64,
    /// Most rows of one file; a file over it is refused whole.
    #[arg(long, default_value_t = IngestOptions::default().max_rows)]
    max_rows: u64,
    // Without an embedder model only BM25 is indexed now, vectors on the first search with one.
    #[command(flatten)]
    embedder: EmbedderArgs,
}

#[derive(Serialize)]
struct Summary {
    accepted: usize,
    rejected: usize,
    chunks: usize,
    sequence: Option<u64>,
    seconds: f64,
    records_per_second: f64,
    files: Vec<IngestReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<provdb::index::CatchUp>,
}

pub(crate) fn run(data: &Path, json: bool, args: IngestArgs) -> anyhow::Result<()> {
    let mut db = Db::open(data)?;
    if !args.no_index
        && let Some(embedder) = args.embedder.load()?
    {
        db = db.with_embedder(embedder);
    }
    let options = IngestOptions {
        contributor: args.contributor,
        skip_invalid: args.skip_invalid,
        max_record_bytes: args.max_record_bytes,
        max_decoded_bytes: args.max_decoded_mb.saturating_mul(1 << 20),
        max_rows: args.max_rows,
        ..IngestOptions::default()
    };
    let started = Instant::now();
    let bar = progress("ingest");
    let show_progress = |path: &Path, rows: u64| {
        bar.set_message(path.display().to_string());
        bar.set_position(rows);
    };
    let mut print_committed = |report: &IngestReport| {
        if json {
            return;
        }
        let sequence = report
            .sequence
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        bar.suspend(|| {
            println!(
                "ingested {}: {} records, {} chunks, {} rejected, sequence {sequence}",
                report.source, report.accepted, report.chunks, report.rejected
            );
            if let Some(rejects) = &report.rejects_file {
                println!("  rejected rows listed in {}", rejects.display());
            }
            // Whoever reads stdout learns of a commit as soon as it happens.
            let _ = std::io::stdout().flush();
        });
    };
    let reports = db.ingest_files(
        &args.name,
        &args.files,
        &options,
        &show_progress,
        &mut print_committed,
    );
    bar.finish_and_clear();
    let reports = reports?;
    let index = if args.no_index {
        None
    } else {
        Some(index(&db, &args.name, json)?)
    };
    let seconds = started.elapsed().as_secs_f64();
    let accepted: usize = reports.iter().map(|r| r.accepted).sum();
    let summary = Summary {
        accepted,
        rejected: reports.iter().map(|r| r.rejected).sum(),
        chunks: reports.iter().map(|r| r.chunks).sum(),
        sequence: reports.iter().filter_map(|r| r.sequence).max(),
        seconds,
        records_per_second: accepted as f64 / seconds.max(1e-9),
        files: reports,
        index,
    };
    if json {
        print_json(&summary)
    } else {
        eprintln!(
            "{} records in {:.2} s ({:.0} records/s)",
            summary.accepted, seconds, summary.records_per_second
        );
        Ok(())
    }
}

/// Catches the Datanet's index up with a progress bar, then reports it on stdout.
fn index(db: &Db, name: &str, json: bool) -> anyhow::Result<provdb::index::CatchUp> {
    let bar = progress("index");
    let caught = db.catch_up_index(name, &|stage, done, _total| {
        bar.set_message(match stage {
            provdb::index::Stage::Text => "index text",
            provdb::index::Stage::Vectors => "embed",
        });
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let caught = caught?;
    if !json {
        println!(
            "indexed {} chunks ({} full-text, {} embedded{}), sequence {}",
            caught.chunks,
            caught.text_chunks,
            caught.vector_chunks,
            if db.embedder().is_none() {
                ", no embedder model: vectors later"
            } else {
                ""
            },
            caught.sequence
        );
    }
    Ok(caught)
}
