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
use provdb_storage::{Address, BatchStart, Committer, Datanet, NewRecord, PreparedBatch, RecordId};
use rayon::prelude::*;
use serde::Serialize;

pub use canonical::{canonical_object, canonical_object_with_span, write_canonical};
pub use chunk::chunk_text;
pub use row::PROVENANCE_COLUMNS;
pub use signature::{
    EIP712_DOMAIN_NAME, EIP712_DOMAIN_VERSION, EIP712_RECORD_TYPE, SignedFields, address_of_key,
    sign_record, sign_record_id, verify_signature,
};

use crate::db::{Db, now_ms};
use crate::error::{Error, Location, Result};
use row::{PreparedRow, RowContext, RowError, hash_rows, prepare, prepare_json_line};
use source::{Format, RawRow, RowData};

/// How an input is ingested.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Contributor of rows that have no `contributor` column.
    pub contributor: Option<Address>,
    /// Store the valid rows and list the others in a rejects file, instead of refusing all.
    pub skip_invalid: bool,
    /// Where the rejects go (default: next to the input, `FILE.rejects.jsonl`).
    pub rejects_path: Option<PathBuf>,
    /// Most bytes one row decodes to, in every format (a JSONL line; a CSV or Parquet row's
    /// fields as JSON); a longer row is refused like any invalid row.
    pub max_record_bytes: usize,
    /// Largest accepted input file.
    pub max_file_bytes: u64,
    /// Most bytes all rows of one input decode to (counted as for `max_record_bytes`); past
    /// it the input is refused whole ([`Error::TooLarge`]) while it is read.
    pub max_decoded_bytes: u64,
    /// Most rows of one input; past it the input is refused whole while it is read.
    pub max_rows: u64,
    /// When set, a row without a signature must have this contributor (an uploader may only
    /// speak for others with their signatures; the HTTP server sets it for contributor keys).
    pub unsigned_only_from: Option<Address>,
    /// Whose word the rows' `supersedes` links are (the HTTP server: the key's principal; the
    /// command line: the rows' contributors). Storage refuses a version of another
    /// contributor's record unless the committer curates the Datanet.
    pub committer: Committer,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            contributor: None,
            skip_invalid: false,
            rejects_path: None,
            max_record_bytes: 8 << 20,
            max_file_bytes: 4 << 30,
            max_decoded_bytes: 8 << 30,
            max_rows: 50_000_000,
            unsigned_only_from: None,
            committer: Committer::Contributors,
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

/// Rows parsed and validated together, in parallel.
const PREPARE_CHUNK_ROWS: usize = 4096;

/// Rows of one rayon task, hashed together once prepared: eight groups of eight for the
/// multi-lane keccak, grouped by length among 64.
const HASH_TOGETHER_ROWS: usize = 64;

/// Collects prepared records and refusals while an input is read. Rows are buffered and
/// prepared in parallel chunks (JSON parsing, hashing and signature recovery dominate); the
/// outcome is then applied in input order, so errors name the first bad row.
struct Batch<'a> {
    db: &'a Db,
    source_name: String,
    context: RowContext<'a>,
    skip_invalid: bool,
    pending: Vec<RawRow>,
    records: Vec<(Location, NewRecord)>,
    seen: HashSet<RecordId>,
    rejects: Vec<(Location, RowError)>,
    source: &'a Path,
    progress: Progress<'a>,
    rows: u64,
    committer: Committer,
}

impl Batch<'_> {
    fn push(&mut self, row: RawRow) -> Result<()> {
        self.rows += 1;
        self.pending.push(row);
        if self.pending.len() >= PREPARE_CHUNK_ROWS {
            self.prepare_pending()?;
            (self.progress)(self.source, self.rows);
        }
        Ok(())
    }

    /// Reads rows with `read` on a scoped thread, in chunks of [`PREPARE_CHUNK_ROWS`], while
    /// this thread prepares the chunk before (the reader is at most two chunks ahead), so
    /// reading a file overlaps preparing it. The outcome is the serial one: chunks are applied
    /// in input order, a preparation error (always in an earlier row than where the reader
    /// is) wins over a read error, and a read error discards the rows of its chunk before it,
    /// as the serial reader did, by never sending that chunk.
    fn read_overlapped(
        &mut self,
        read: impl FnOnce(&mut dyn FnMut(RawRow) -> Result<()>) -> Result<()> + Send,
    ) -> Result<()> {
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(1);
            let reader = scope.spawn(move || {
                let mut chunk = Vec::with_capacity(PREPARE_CHUNK_ROWS);
                read(&mut |row| {
                    chunk.push(row);
                    if chunk.len() >= PREPARE_CHUNK_ROWS {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(PREPARE_CHUNK_ROWS));
                        // The preparing side hung up: it failed, and its error is the one
                        // reported; this one only stops the reader.
                        sender
                            .send(full)
                            .map_err(|_| Error::Internal("ingest preparation stopped".into()))?;
                    }
                    Ok(())
                })?;
                if !chunk.is_empty() {
                    // A failed send means preparation failed, and reports its own error.
                    let _ = sender.send(chunk);
                }
                Ok(())
            });
            let mut prepared = Ok(());
            for chunk in receiver {
                self.rows += chunk.len() as u64;
                self.pending = chunk;
                prepared = self.prepare_pending();
                if prepared.is_err() {
                    break;
                }
                (self.progress)(self.source, self.rows);
            }
            let read = reader
                .join()
                .map_err(|_| Error::Internal("the ingest reader panicked".into()))?;
            prepared.and(read)
        })
    }

    fn prepare_pending(&mut self) -> Result<()> {
        let context = &self.context;
        let prepared: Vec<(Location, Result<NewRecord, RowError>)> =
            std::mem::take(&mut self.pending)
                .into_par_iter()
                .chunks(HASH_TOGETHER_ROWS)
                .flat_map_iter(|rows| {
                    let (locations, rows): (Vec<Location>, Vec<_>) = rows
                        .into_iter()
                        .map(|row| (row.location, prepare_row(row.fields, context)))
                        .unzip();
                    locations.into_iter().zip(hash_rows(rows, context))
                })
                .collect();
        for (location, record) in prepared {
            match record {
                Ok(record) if self.seen.insert(record.record_id()) => {
                    self.records.push((location, record))
                }
                Ok(record) => {
                    let reason =
                        format!("duplicate record {} within this input", record.record_id());
                    self.refuse(
                        location,
                        RowError {
                            column: None,
                            reason,
                        },
                    )?;
                }
                Err(e) => self.refuse(location, e)?,
            }
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
    /// error names the row (storage checks it all again under its writer lock).
    fn check_against_store(&mut self) -> Result<()> {
        let store = &self.db.store;
        let ids: Vec<RecordId> = self.records.iter().map(|(_, r)| r.record_id()).collect();
        let existing = store.existing_records(&ids)?;
        let records = std::mem::take(&mut self.records);
        let mut keep = Vec::with_capacity(records.len());
        for ((location, record), exists) in records.into_iter().zip(existing) {
            let problem = if exists {
                Some(RowError {
                    column: None,
                    reason: format!("duplicate record {}: already stored", record.record_id()),
                })
            } else {
                self.supersedes_problem(&record)?
            };
            match problem {
                Some(e) => self.refuse(location, e)?,
                None => keep.push((location, record)),
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
        let datanet = self.context.datanet;
        let reason = match store.record(&old_id)? {
            None => format!("supersedes unknown record {old_id}"),
            Some(old) if old.datanet_id != datanet.id => {
                format!("supersedes {old_id} of another datanet")
            }
            Some(_) if store.superseded_by(&old_id)?.is_some() => {
                format!("{old_id} is already superseded")
            }
            Some(old) => match store.version_act(datanet, record, &old, self.committer) {
                Ok(_) => return Ok(None),
                Err(e) if e.is_user_error() => e.to_string(),
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Some(RowError {
            column: Some("supersedes".into()),
            reason,
        }))
    }
}

/// Called with (input, rows read so far) while an input is read; from a reader thread.
pub type Progress<'a> = &'a (dyn Fn(&Path, u64) + Sync);

impl Db {
    /// Ingests one file into Datanet `name`; the format follows the extension.
    pub fn ingest_file(
        &self,
        name: &str,
        path: &Path,
        options: &IngestOptions,
    ) -> Result<IngestReport> {
        let mut reports = self.ingest_files(
            name,
            &[path.to_path_buf()],
            options,
            &|_, _| {},
            &mut |_| {},
        )?;
        reports
            .pop()
            .ok_or_else(|| Error::Internal("no report for an ingested file".into()))
    }

    /// Ingests files in order, each its own all-or-nothing batch, stopping at the first that
    /// fails (earlier files stay stored; `committed` has been called for each of them).
    ///
    /// Reading and preparing file n+1 (parsing, hashing, signature recovery, chunking, on a
    /// reader thread and the rayon pool) overlaps with the commit of file n on this thread;
    /// duplicate checks against the store happen at commit time, in file order.
    pub fn ingest_files(
        &self,
        name: &str,
        paths: &[PathBuf],
        options: &IngestOptions,
        progress: Progress<'_>,
        committed: &mut dyn FnMut(&IngestReport),
    ) -> Result<Vec<IngestReport>> {
        let datanet = self.store.datanet(name)?;
        // Where each file's batch will start if the files before it commit whole and nothing
        // else writes in between: its records are encoded for that start while the file
        // before commits (a commit that finds the store elsewhere encodes them again).
        let mut start = self.store.next_batch_start()?;
        std::thread::scope(|scope| {
            // Three stages, a file in each: reading and preparing, encoding, committing.
            let (read_sender, read_receiver) = std::sync::mpsc::sync_channel(1);
            let (ready_sender, ready_receiver) = std::sync::mpsc::sync_channel(1);
            let datanet = &datanet;
            scope.spawn(move || {
                for path in paths {
                    let read = self.read_input(datanet, path, options, progress);
                    let failed = read.is_err();
                    if read_sender.send(read).is_err() || failed {
                        break;
                    }
                }
            });
            scope.spawn(move || {
                for read in read_receiver {
                    let ready = read.and_then(|(batch, rejects_path)| {
                        let ready = self.ready(batch, start)?;
                        start = start.after(ready.prepared.chunks());
                        Ok((ready, rejects_path))
                    });
                    let failed = ready.is_err();
                    if ready_sender.send(ready).is_err() || failed {
                        break;
                    }
                }
            });
            let mut reports = Vec::with_capacity(paths.len());
            for ready in ready_receiver {
                let (ready, rejects_path) = ready?;
                let report = self.finish(ready, Some(rejects_path))?;
                committed(&report);
                reports.push(report);
            }
            Ok(reports)
        })
    }

    /// Reads, validates and prepares one file (nothing is written); returns the batch and
    /// where its rejects go.
    fn read_input<'a>(
        &'a self,
        datanet: &'a Datanet,
        path: &'a Path,
        options: &IngestOptions,
        progress: Progress<'a>,
    ) -> Result<(Batch<'a>, PathBuf)> {
        let format = Format::of(path)?;
        let source_name = path.display().to_string();
        let metadata = fs_err::metadata(path).map_err(Error::io(path))?;
        if metadata.len() > options.max_file_bytes {
            let reason = format!(
                "file of {} bytes exceeds the limit of {} bytes",
                metadata.len(),
                options.max_file_bytes
            );
            return Err(Error::Input {
                source_name,
                location: Location::Whole,
                column: None,
                reason,
            });
        }
        let rejects_path = options.rejects_path.clone().unwrap_or_else(|| {
            let mut name = path.as_os_str().to_owned();
            name.push(".rejects.jsonl");
            PathBuf::from(name)
        });
        let mut batch = self.new_batch(datanet, source_name.clone(), options, path, progress);
        let limits = options.input_limits();
        let name = source_name.as_str();
        batch.read_overlapped(move |sink| {
            source::read_file(format, path, name, datanet, limits, sink)
        })?;
        if batch.rows == 0 {
            let reason = "no records in file".to_string();
            return Err(Error::Input {
                source_name,
                location: Location::Whole,
                column: None,
                reason,
            });
        }
        batch.prepare_pending()?;
        Ok((batch, rejects_path))
    }

    /// Ingests an Arrow batch (one row per record) into Datanet `name`, all or nothing.
    pub fn ingest_batch(
        &self,
        name: &str,
        input: &RecordBatch,
        options: &IngestOptions,
    ) -> Result<IngestReport> {
        let datanet = self.store.datanet(name)?;
        let source = Path::new("arrow batch");
        let mut batch = self.new_batch(&datanet, "arrow batch".into(), options, source, &|_, _| {});
        let mut budget = source::Budget::new(options.input_limits(), "arrow batch");
        source::batch_rows_within(input, 0, &mut budget, &mut |row| batch.push(row))?;
        if batch.rows == 0 {
            return Err(Error::Invalid("the arrow batch has no rows".into()));
        }
        batch.prepare_pending()?;
        let ready = self.ready(batch, self.store.next_batch_start()?)?;
        self.finish(ready, options.rejects_path.clone())
    }

    fn new_batch<'a>(
        &'a self,
        datanet: &'a Datanet,
        source_name: String,
        options: &IngestOptions,
        source: &'a Path,
        progress: Progress<'a>,
    ) -> Batch<'a> {
        Batch {
            db: self,
            source_name,
            context: RowContext {
                datanet,
                default_contributor: options.contributor,
                unsigned_only_from: options.unsigned_only_from,
                now_ms: now_ms(),
            },
            skip_invalid: options.skip_invalid,
            pending: Vec::with_capacity(PREPARE_CHUNK_ROWS),
            records: Vec::new(),
            seen: HashSet::new(),
            rejects: Vec::new(),
            source,
            progress,
            rows: 0,
            committer: options.committer,
        }
    }

    /// Hands a read input's records to storage to be encoded for a commit at `start` (see
    /// `Store::prepare_batch`); done on the reading thread, off the committing one.
    fn ready<'a>(&self, mut batch: Batch<'a>, start: BatchStart) -> Result<ReadyInput<'a>> {
        let (locations, records): (Vec<Location>, Vec<NewRecord>) =
            std::mem::take(&mut batch.records).into_iter().unzip();
        let prepared =
            self.store
                .prepare_batch(batch.context.datanet.id, records, batch.committer, start)?;
        Ok(ReadyInput {
            batch,
            locations,
            prepared,
        })
    }

    /// Commits a prepared input: the one write of an input. Storage checks every record
    /// against what is stored (under its writer lock); only when it refuses the batch are the
    /// records checked here one by one, so that the rows at fault are named (or, with
    /// `skip_invalid`, refused) and the others committed.
    fn finish(&self, ready: ReadyInput<'_>, rejects_path: Option<PathBuf>) -> Result<IngestReport> {
        let ReadyInput {
            mut batch,
            locations,
            prepared,
        } = ready;
        let mut report = IngestReport {
            source: batch.source_name.clone(),
            ..Default::default()
        };
        let mut prepared = Some((locations, prepared));
        loop {
            report.rejected = batch.rejects.len();
            if !batch.rejects.is_empty() {
                // Written before the commit: if it cannot be written, nothing is stored.
                let path = rejects_path.clone().ok_or_else(|| {
                    Error::Invalid("rows were refused but no rejects file was given".into())
                })?;
                write_rejects(&path, &batch.rejects)?;
                report.rejects_file = Some(path);
            }
            let (locations, outcome) = match prepared.take() {
                Some((locations, prepared)) => {
                    if prepared.records().is_empty() {
                        return Ok(report);
                    }
                    report.content_bytes = content_bytes(prepared.records());
                    (locations, self.store.try_commit_prepared(prepared))
                }
                None => {
                    if batch.records.is_empty() {
                        return Ok(report);
                    }
                    let (locations, records): (Vec<Location>, Vec<NewRecord>) =
                        std::mem::take(&mut batch.records).into_iter().unzip();
                    report.content_bytes = content_bytes(&records);
                    let outcome = self.store.try_commit_records(
                        batch.context.datanet.id,
                        records,
                        batch.committer,
                    );
                    (locations, outcome)
                }
            };
            let uncommitted = match outcome {
                Ok(receipt) => {
                    report.accepted = receipt.records;
                    report.chunks = receipt.chunks;
                    report.sequence = Some(receipt.sequence);
                    return Ok(report);
                }
                Err(uncommitted) => *uncommitted,
            };
            if uncommitted.records.is_empty() {
                return Err(uncommitted.error.into());
            }
            batch.records = locations.into_iter().zip(uncommitted.records).collect();
            let before = batch.records.len();
            batch.check_against_store()?;
            if batch.records.len() == before {
                // No row is at fault here: the refusal stands for the whole input.
                return Err(uncommitted.error.into());
            }
        }
    }
}

/// A read input, its records prepared for the commit (`Db::ready`).
struct ReadyInput<'a> {
    batch: Batch<'a>,
    /// Where each record of `prepared` came from, in its order.
    locations: Vec<Location>,
    prepared: PreparedBatch,
}

fn content_bytes(records: &[NewRecord]) -> u64 {
    records.iter().map(|r| r.content().len() as u64).sum()
}

/// Prepares one row (see `row::prepare`).
fn prepare_row(fields: RowData, context: &RowContext<'_>) -> Result<PreparedRow, RowError> {
    match fields {
        RowData::Json(line) => prepare_json_line(&line, context),
        fields => fields
            .into_object()
            .map_err(|reason| RowError {
                column: None,
                reason,
            })
            .and_then(|fields| prepare(fields, &[], &[], context)),
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
