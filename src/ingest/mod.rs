//! Ingest: files (JSONL, CSV, Parquet) and Arrow batches into a Datanet.
//!
//! Invariant: an input is all or nothing. Every row is parsed, validated, hashed, checked for
//! duplicates and signatures, and chunked before anything is written; then the accepted
//! records go to storage as one batch under one sequence number. With `skip_invalid`, refused
//! rows are listed in a rejects file (JSONL: `line` or `row`, `column`, `reason`) and the rest
//! are stored; without it, the first refused row fails the input and nothing is stored.

mod canonical;
mod chunk;
mod row;
mod signature;
mod source;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use provdb_storage::{Address, Datanet, NewRecord, RecordId};
use serde::Serialize;

pub use canonical::{canonical_object, write_canonical};
pub use chunk::chunk_text;
pub use row::PROVENANCE_COLUMNS;
pub use signature::{address_of_key, sign_record_id, verify_signature};

use crate::db::{Db, now_ms};
use crate::error::{Error, Location, Result};
use row::{RowContext, RowError, prepare};
use source::{Format, RawRow};

/// How an input is ingested.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Contributor of rows that have no `contributor` column.
    pub contributor: Option<Address>,
    /// Store the valid rows and list the others in a rejects file, instead of refusing all.
    pub skip_invalid: bool,
    /// Where the rejects go (default: next to the input, `FILE.rejects.jsonl`).
    pub rejects_path: Option<PathBuf>,
    /// Longest accepted JSONL line.
    pub max_record_bytes: usize,
    /// Largest accepted input file.
    pub max_file_bytes: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            contributor: None,
            skip_invalid: false,
            rejects_path: None,
            max_record_bytes: 8 << 20,
            max_file_bytes: 4 << 30,
        }
    }
}

/// What an ingest did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IngestReport {
    /// The input's name.
    pub source: String,
    /// Records stored.
    pub accepted: usize,
    /// Rows refused (only with `skip_invalid`).
    pub rejected: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Bytes of canonical content stored.
    pub content_bytes: u64,
    /// Sequence number of the batch, when anything was stored.
    pub sequence: Option<u64>,
    /// The rejects file, when rows were refused.
    pub rejects_file: Option<PathBuf>,
}

/// A refused row, as written to the rejects file.
#[derive(Serialize)]
struct Reject {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<String>,
    reason: String,
}

/// Collects prepared records and refusals while an input is read.
struct Batch<'a> {
    db: &'a Db,
    source_name: String,
    context: RowContext<'a>,
    skip_invalid: bool,
    records: Vec<NewRecord>,
    seen: HashSet<RecordId>,
    rejects: Vec<(Location, RowError)>,
    progress: &'a mut dyn FnMut(u64),
    rows: u64,
}

impl Batch<'_> {
    fn push(&mut self, row: RawRow) -> Result<()> {
        self.rows += 1;
        if self.rows % 1024 == 0 {
            (self.progress)(self.rows);
        }
        let prepared = row
            .fields
            .map_err(|reason| RowError {
                column: None,
                reason,
            })
            .and_then(|fields| prepare(fields, &self.context))
            .and_then(|record| {
                if self.seen.insert(record.record_id) {
                    Ok(record)
                } else {
                    Err(RowError {
                        column: None,
                        reason: format!("duplicate record {} within this input", record.record_id),
                    })
                }
            });
        match prepared {
            Ok(record) => self.records.push(record),
            Err(e) => self.refuse(row.location, e)?,
        }
        Ok(())
    }

    fn refuse(&mut self, location: Location, error: RowError) -> Result<()> {
        if self.skip_invalid {
            self.rejects.push((location, error));
            Ok(())
        } else {
            Err(Error::Input {
                source_name: self.source_name.clone(),
                location,
                column: error.column,
                reason: error.reason,
            })
        }
    }

    /// Refuses rows whose record is already stored or whose `supersedes` cannot hold, so the
    /// error names the row; storage checks all of it again under its writer lock.
    fn check_against_store(&mut self, locations: &[Location]) -> Result<()> {
        let store = &self.db.store;
        let ids: Vec<RecordId> = self.records.iter().map(|r| r.record_id).collect();
        let existing = store.existing_records(&ids)?;
        let mut keep = Vec::with_capacity(self.records.len());
        let mut kept_locations = Vec::with_capacity(locations.len());
        let records = std::mem::take(&mut self.records);
        for ((record, exists), location) in records.into_iter().zip(existing).zip(locations) {
            let problem = if exists {
                Some(RowError {
                    column: None,
                    reason: format!("duplicate record {}: already stored", record.record_id),
                })
            } else {
                self.supersedes_problem(&record)?
            };
            match problem {
                Some(e) => self.refuse(*location, e)?,
                None => {
                    keep.push(record);
                    kept_locations.push(*location);
                }
            }
        }
        self.records = keep;
        Ok(())
    }

    fn supersedes_problem(&self, record: &NewRecord) -> Result<Option<RowError>> {
        let Some(old_id) = record.supersedes else {
            return Ok(None);
        };
        let store = &self.db.store;
        let reason = match store.record(&old_id)? {
            None => format!("supersedes unknown record {old_id}"),
            Some(old) if old.datanet_id != self.context.datanet.id => {
                format!("supersedes {old_id} of another datanet")
            }
            Some(_) if store.superseded_by(&old_id)?.is_some() => {
                format!("{old_id} is already superseded")
            }
            Some(_) => return Ok(None),
        };
        Ok(Some(RowError {
            column: Some("supersedes".into()),
            reason,
        }))
    }
}

impl Db {
    /// Ingests one file into Datanet `name`; the format follows the extension.
    pub fn ingest_file(
        &self,
        name: &str,
        path: &Path,
        options: &IngestOptions,
    ) -> Result<IngestReport> {
        self.ingest_file_with_progress(name, path, options, &mut |_| {})
    }

    /// `ingest_file`, calling `progress` with the number of rows read so far.
    pub fn ingest_file_with_progress(
        &self,
        name: &str,
        path: &Path,
        options: &IngestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<IngestReport> {
        let datanet = self.store.datanet(name)?;
        let format = Format::of(path)?;
        let source_name = path.display().to_string();
        let metadata = fs_err::metadata(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        if metadata.len() > options.max_file_bytes {
            return Err(Error::Input {
                source_name,
                location: Location::Whole,
                column: None,
                reason: format!(
                    "file of {} bytes exceeds the limit of {} bytes",
                    metadata.len(),
                    options.max_file_bytes
                ),
            });
        }
        let rejects_path = options.rejects_path.clone().unwrap_or_else(|| {
            let mut name = path.as_os_str().to_owned();
            name.push(".rejects.jsonl");
            PathBuf::from(name)
        });
        let mut locations = Vec::new();
        let mut batch = self.new_batch(&datanet, source_name.clone(), options, progress);
        let mut sink = |row: RawRow| {
            let location = row.location;
            let before = batch.records.len();
            batch.push(row)?;
            if batch.records.len() > before {
                locations.push(location);
            }
            Ok(())
        };
        match format {
            Format::Jsonl => {
                let file = fs_err::File::open(path).map_err(Error::io(path))?;
                source::read_jsonl(file, &source_name, options.max_record_bytes, &mut sink)?;
            }
            Format::Csv => source::read_csv(path, &source_name, &datanet, &mut sink)?,
            Format::Parquet => source::read_parquet(path, &source_name, &mut sink)?,
        }
        if batch.rows == 0 {
            return Err(Error::Input {
                source_name,
                location: Location::Whole,
                column: None,
                reason: "no records in file".into(),
            });
        }
        self.finish(batch, &locations, Some(rejects_path))
    }

    /// Ingests an Arrow batch (one row per record) into Datanet `name`, all or nothing.
    pub fn ingest_batch(
        &self,
        name: &str,
        input: &RecordBatch,
        options: &IngestOptions,
    ) -> Result<IngestReport> {
        let datanet = self.store.datanet(name)?;
        let mut locations = Vec::new();
        let mut no_progress = |_| {};
        let mut batch = self.new_batch(&datanet, "arrow batch".into(), options, &mut no_progress);
        source::batch_rows(input, 0, &mut |row| {
            let location = row.location;
            let before = batch.records.len();
            batch.push(row)?;
            if batch.records.len() > before {
                locations.push(location);
            }
            Ok(())
        })?;
        if batch.rows == 0 {
            return Err(Error::Invalid("the arrow batch has no rows".into()));
        }
        self.finish(batch, &locations, options.rejects_path.clone())
    }

    fn new_batch<'a>(
        &'a self,
        datanet: &'a Datanet,
        source_name: String,
        options: &IngestOptions,
        progress: &'a mut dyn FnMut(u64),
    ) -> Batch<'a> {
        Batch {
            db: self,
            source_name,
            context: RowContext {
                datanet,
                default_contributor: options.contributor,
                now_ms: now_ms(),
            },
            skip_invalid: options.skip_invalid,
            records: Vec::new(),
            seen: HashSet::new(),
            rejects: Vec::new(),
            progress,
            rows: 0,
        }
    }

    fn finish(
        &self,
        mut batch: Batch<'_>,
        locations: &[Location],
        rejects_path: Option<PathBuf>,
    ) -> Result<IngestReport> {
        batch.check_against_store(locations)?;
        let mut report = IngestReport {
            source: batch.source_name.clone(),
            rejected: batch.rejects.len(),
            ..Default::default()
        };
        if !batch.rejects.is_empty() {
            // Written before the commit: if it cannot be written, nothing is stored.
            let path = rejects_path.ok_or_else(|| {
                Error::Invalid("rows were refused but no rejects file was given".into())
            })?;
            write_rejects(&path, &batch.rejects)?;
            report.rejects_file = Some(path);
        }
        if batch.records.is_empty() {
            return Ok(report);
        }
        report.content_bytes = batch.records.iter().map(|r| r.content.len() as u64).sum();
        let receipt = self
            .store
            .commit_records(batch.context.datanet.id, std::mem::take(&mut batch.records))?;
        report.accepted = receipt.records;
        report.chunks = receipt.chunks;
        report.sequence = Some(receipt.sequence);
        Ok(report)
    }
}

fn write_rejects(path: &Path, rejects: &[(Location, RowError)]) -> Result<()> {
    let file = fs_err::File::create(path).map_err(Error::io(path))?;
    let mut out = std::io::BufWriter::new(file);
    for (location, error) in rejects {
        let (line, row) = match location {
            Location::Line(n) => (Some(*n), None),
            Location::Row(n) => (None, Some(*n)),
            Location::Whole => (None, None),
        };
        let reject = Reject {
            line,
            row,
            column: error.column.clone(),
            reason: error.reason.clone(),
        };
        let json = serde_json::to_string(&reject).map_err(|e| Error::Internal(e.to_string()))?;
        writeln!(out, "{json}").map_err(Error::io(path))?;
    }
    out.flush().map_err(Error::io(path))
}
