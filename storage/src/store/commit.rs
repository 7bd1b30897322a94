//! Mutations of records: ingest batches, status changes and tombstones.
//!
//! Invariant: versions belong to their contributor. Every `supersedes` link and tombstone is
//! checked here, under the writer lock, against the batch's [`Committer`]
//! ([`Store::version_act`]), so no caller can skip the check; a refusal refuses the whole batch
//! before anything is written, and an accepted version stores who acted and in which role.

use std::collections::{HashMap, HashSet};

use rocksdb::WriteBatch;

use super::Store;
use super::encode::{BatchStart, RecordWrites, Stamp, Version};
use crate::acts::{ActingRole, Committer, SignatureScheme, VersionAct, version_rule};
use crate::codec::encode;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Address, BatchReceipt, Datanet, LogEntry, NewRecord, Record, RecordId, Status};

/// Largest number of records one batch may carry.
pub(crate) const MAX_BATCH_RECORDS: usize = 1_000_000;

impl Store {
    /// Stores a batch of validated records of one Datanet, atomically: either every record,
    /// chunk and counter of the batch is committed under one new sequence number, or nothing is.
    ///
    /// Refuses the whole batch when a record's id is not the hash of its content, when an id is
    /// already stored or repeats within the batch, or when `supersedes` names a record that is
    /// missing, of another Datanet, tombstoned, already superseded, or another contributor's
    /// (see [`Store::version_act`]).
    /// The records speak for their contributors (`Committer::Contributors`): a version may
    /// supersede only a record of its own contributor.
    pub fn commit_records(&self, datanet_id: u32, records: Vec<NewRecord>) -> Result<BatchReceipt> {
        self.try_commit_records(datanet_id, records, Committer::Contributors)
            .map_err(|uncommitted| uncommitted.error)
    }

    /// `commit_records` for `committer`, giving the records back when a check refuses the
    /// batch, so that a caller can find the records at fault, drop them and try again without
    /// checking every record twice when none is.
    pub fn try_commit_records(
        &self,
        datanet_id: u32,
        records: Vec<NewRecord>,
        committer: Committer,
    ) -> std::result::Result<BatchReceipt, Box<Uncommitted>> {
        let by_id = sorted_by_id(&records);
        let prepared = PreparedBatch {
            datanet_id,
            records,
            by_id,
            committer,
            encoded: None,
        };
        self.commit_batch(prepared, None)
    }

    /// Where the next batch would start if it committed now.
    pub fn next_batch_start(&self) -> Result<BatchStart> {
        let counters = self.lock()?;
        Ok(BatchStart {
            sequence: counters.sequence + 1,
            first_chunk_id: counters.next_chunk_id,
        })
    }

    /// Prepares a batch for [`Store::try_commit_prepared`] off the writer lock: its records
    /// sorted by id and, when none supersedes another (versions are only known at commit),
    /// their stored values, contributor index and pages built for a commit at `start`. A commit
    /// that finds the store elsewhere (another batch came first) builds them again; the outcome
    /// is the same either way, only the work moves off the committing thread.
    pub fn prepare_batch(
        &self,
        datanet_id: u32,
        records: Vec<NewRecord>,
        committer: Committer,
        start: BatchStart,
    ) -> Result<PreparedBatch> {
        let by_id = sorted_by_id(&records);
        let encodable = !records.is_empty()
            && records.len() <= MAX_BATCH_RECORDS
            && records.iter().all(|r| r.supersedes.is_none());
        let encoded = if encodable {
            let status = self.datanet_by_id(datanet_id)?.initial_status;
            let stamp = Stamp {
                datanet_id,
                status,
                start,
            };
            let versions = vec![Version::FIRST; records.len()];
            Some((
                stamp,
                self.record_writes(&records, &by_id, &versions, &stamp)?,
            ))
        } else {
            None
        };
        Ok(PreparedBatch {
            datanet_id,
            records,
            by_id,
            committer,
            encoded,
        })
    }

    /// Commits a prepared batch, as `try_commit_records` does.
    pub fn try_commit_prepared(
        &self,
        prepared: PreparedBatch,
    ) -> std::result::Result<BatchReceipt, Box<Uncommitted>> {
        self.commit_batch(prepared, None)
    }

    fn commit_batch(
        &self,
        prepared: PreparedBatch,
        status: Option<Status>,
    ) -> std::result::Result<BatchReceipt, Box<Uncommitted>> {
        let checked = self.lock().and_then(|counters| {
            self.check_batch(
                prepared.datanet_id,
                &prepared.records,
                &prepared.by_id,
                prepared.committer,
                status,
                counters,
            )
        });
        match checked {
            Ok(checked) => self.write_batch(prepared, checked).map_err(|error| {
                Box::new(Uncommitted {
                    error,
                    records: Vec::new(),
                })
            }),
            Err(error) => Err(Box::new(Uncommitted {
                error,
                records: prepared.records,
            })),
        }
    }

    /// Checks a batch under the writer lock (so nothing can slip in between the checks and the
    /// write): its size, its ids (none repeated, none stored), its `supersedes` links.
    fn check_batch<'a>(
        &self,
        datanet_id: u32,
        records: &[NewRecord],
        by_id: &[usize],
        committer: Committer,
        status: Option<Status>,
        counters: std::sync::MutexGuard<'a, super::Counters>,
    ) -> Result<CheckedBatch<'a>> {
        let status = match status {
            Some(status) => status,
            None => self.datanet_by_id(datanet_id)?.initial_status,
        };
        if records.is_empty() {
            return Err(StorageError::Invalid(
                "a batch needs at least one record".into(),
            ));
        }
        if records.len() > MAX_BATCH_RECORDS {
            return Err(StorageError::Invalid(format!(
                "batch of {} records exceeds the limit of {MAX_BATCH_RECORDS}",
                records.len()
            )));
        }
        // In record-id order, a repeated id is next to its twin and the existence check reads
        // in key order.
        if let Some(pair) = by_id
            .windows(2)
            .find(|pair| records[pair[0]].record_id == records[pair[1]].record_id)
        {
            let id = records[pair[0]].record_id;
            return Err(StorageError::DuplicateRecord(id.to_string()));
        }
        let existing = self.db.batched_multi_get_cf(
            self.cf(CF_RECORDS)?,
            by_id.iter().map(|&i| &records[i].record_id.0),
            true,
        );
        for (&i, found) in by_id.iter().zip(existing) {
            if found.map_err(|e| self.rocks(e))?.is_some() {
                let id = records[i].record_id;
                return Err(StorageError::DuplicateRecord(id.to_string()));
            }
        }
        let versions = self.resolve_versions(datanet_id, records, committer)?;
        Ok(CheckedBatch {
            counters,
            status,
            versions,
        })
    }

    /// Writes a checked batch, with the record writes built before when they were built for
    /// where the store stands.
    fn write_batch(
        &self,
        prepared: PreparedBatch,
        checked: CheckedBatch<'_>,
    ) -> Result<BatchReceipt> {
        let PreparedBatch {
            datanet_id,
            records,
            by_id,
            committer: _,
            encoded,
        } = prepared;
        let CheckedBatch {
            mut counters,
            status,
            versions,
        } = checked;
        let stamp = Stamp {
            datanet_id,
            status,
            start: BatchStart {
                sequence: counters.sequence + 1,
                first_chunk_id: counters.next_chunk_id,
            },
        };
        let RecordWrites {
            mut batch,
            end_chunk_id,
        } = match encoded {
            // Built as first versions (none supersedes): what `versions` holds then.
            Some((built_for, writes)) if built_for == stamp => writes,
            _ => self.record_writes(&records, &by_id, &versions, &stamp)?,
        };
        drop(by_id);
        let sequence = stamp.start.sequence;
        let mut stats = self.stats(datanet_id)?;
        let mut contributor_counts = self.contributor_counts(datanet_id, &records)?;
        let superseded_cf = self.cf(CF_SUPERSEDED_BY)?;
        let mut superseded = Vec::new();
        for record in &records {
            if let Some(old) = record.supersedes {
                batch.put_cf(superseded_cf, record_key(&old), record.record_id.0);
                superseded.push(old);
            }
            stats.records += 1;
            stats.tombstones += u64::from(status == Status::Tombstoned);
            stats.chunks += record.chunks.len() as u64;
            stats.content_bytes += record.content.len() as u64;
            let count = contributor_counts.entry(record.contributor).or_insert(0);
            if *count == 0 {
                stats.contributors += 1;
            }
            *count += 1;
        }
        let contributors_cf = self.cf(CF_CONTRIBUTORS)?;
        for (address, count) in &contributor_counts {
            batch.put_cf(
                contributors_cf,
                datanet_address_key(datanet_id, address),
                u64_value(*count),
            );
        }
        stats.last_sequence = sequence;
        batch.put_cf(self.cf(CF_STATS)?, datanet_key(datanet_id), encode(&stats)?);
        let first_chunk_id = stamp.start.first_chunk_id;
        let record_ids: Vec<RecordId> = records.iter().map(|r| r.record_id).collect();
        let receipt = BatchReceipt {
            sequence,
            records: record_ids.len(),
            chunks: (end_chunk_id - first_chunk_id) as usize,
            first_chunk_id,
        };
        let entry = LogEntry::Ingest {
            datanet_id,
            record_ids,
            first_chunk_id,
            end_chunk_id,
            superseded,
        };
        let next_datanet = counters.next_datanet_id;
        self.commit(&mut counters, batch, &entry, end_chunk_id, next_datanet)?;
        Ok(receipt)
    }

    /// The version of each new record, checking every `supersedes` link: the old version is
    /// of this Datanet, live, not yet superseded, and the committer may replace it
    /// ([`Store::version_act`]).
    fn resolve_versions(
        &self,
        datanet_id: u32,
        records: &[NewRecord],
        committer: Committer,
    ) -> Result<Vec<Version>> {
        let mut targets_in_batch = HashSet::new();
        let mut versions = Vec::with_capacity(records.len());
        let mut datanet = None;
        for record in records {
            let Some(old_id) = record.supersedes else {
                versions.push(Version::FIRST);
                continue;
            };
            let old = self
                .record(&old_id)?
                .ok_or_else(|| StorageError::UnknownRecord(old_id.to_string()))?;
            let refuse = |why: &str| {
                Err(StorageError::Invalid(format!(
                    "record {} cannot supersede {old_id}: {why}",
                    record.record_id
                )))
            };
            if old.datanet_id != datanet_id {
                return refuse("it belongs to another datanet");
            }
            if old.status == Status::Tombstoned {
                return refuse("it is a tombstone");
            }
            if self.superseded_by(&old_id)?.is_some() || !targets_in_batch.insert(old_id) {
                return refuse("it is already superseded");
            }
            let datanet = match &datanet {
                Some(datanet) => datanet,
                None => datanet.insert(self.datanet_by_id(datanet_id)?),
            };
            let act = self.version_act(datanet, record, &old, committer)?;
            let number = old
                .version
                .checked_add(1)
                .ok_or_else(|| StorageError::Invalid("version overflow".into()))?;
            versions.push(Version {
                number,
                act: Some(act),
            });
        }
        Ok(versions)
    }

    /// Who may store `new` over `old`, a record of `datanet`, and in which role: the rule that
    /// versions belong to their contributor. `old`'s contributor may, when `committer` speaks
    /// for them (the command line; their own key; or anyone carrying their EIP-712 signature,
    /// which covers `supersedes`); otherwise the committer acts as curator and must be the
    /// Datanet's owner, one of its curators, or an administrator. Ingest checks rows with this
    /// before committing, so that the error names the row.
    pub fn version_act(
        &self,
        datanet: &Datanet,
        new: &NewRecord,
        old: &Record,
        committer: Committer,
    ) -> Result<VersionAct> {
        let contributor_signed =
            new.signature.is_some() && new.signature_scheme == Some(SignatureScheme::Eip712);
        let speaks_for_contributor = match committer {
            Committer::Contributors => true,
            Committer::Principal(by) | Committer::Admin(by) => {
                by == new.contributor || contributor_signed
            }
        };
        if speaks_for_contributor && new.contributor == old.contributor {
            return Ok(VersionAct {
                by: old.contributor,
                role: ActingRole::Contributor,
            });
        }
        let role = match committer {
            Committer::Principal(by) | Committer::Admin(by) if datanet.owner == Some(by) => {
                Some((by, ActingRole::Owner))
            }
            Committer::Principal(by) | Committer::Admin(by)
                if self.is_curator(datanet.id, &by)? =>
            {
                Some((by, ActingRole::Curator))
            }
            Committer::Admin(by) => Some((by, ActingRole::Admin)),
            _ => None,
        };
        match role {
            Some((by, role)) => Ok(VersionAct { by, role }),
            None => Err(StorageError::Invalid(version_rule(
                &old.record_id,
                &old.contributor,
                &datanet.name,
            ))),
        }
    }

    fn contributor_counts(
        &self,
        datanet_id: u32,
        records: &[NewRecord],
    ) -> Result<HashMap<Address, u64>> {
        let distinct: Vec<Address> = records
            .iter()
            .map(|r| r.contributor)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let cf = self.cf(CF_CONTRIBUTORS)?;
        let keys: Vec<[u8; 24]> = distinct
            .iter()
            .map(|a| datanet_address_key(datanet_id, a))
            .collect();
        let mut counts = HashMap::with_capacity(distinct.len());
        for ((address, key), found) in
            distinct
                .iter()
                .zip(&keys)
                .zip(self.db.batched_multi_get_cf(cf, keys.iter(), false))
        {
            let count = match found.map_err(|e| self.rocks(e))? {
                Some(bytes) => crate::codec::decode_u64(CF_CONTRIBUTORS, key, &bytes)?,
                None => 0,
            };
            counts.insert(*address, count);
        }
        Ok(counts)
    }

    /// Changes a record's curation status. A tombstone's status cannot change, and a record
    /// cannot be given the `tombstoned` status this way (use `tombstone`).
    pub fn set_status(&self, record_id: &RecordId, status: Status) -> Result<u64> {
        self.set_curation(record_id, Some(status), None)
    }

    /// Changes a record's curation state: its status and/or its quality score (0..=1). The
    /// change is logged as a `StatusChanged` entry carrying the (possibly unchanged) status, so
    /// side indexes replay it like any status change.
    pub fn set_curation(
        &self,
        record_id: &RecordId,
        status: Option<Status>,
        quality: Option<f32>,
    ) -> Result<u64> {
        if status == Some(Status::Tombstoned) {
            return Err(StorageError::Invalid(
                "use tombstone to remove a record".into(),
            ));
        }
        if let Some(q) = quality
            && !(0.0..=1.0).contains(&q)
        {
            return Err(StorageError::Invalid(format!(
                "quality must be in 0..=1, got {q}"
            )));
        }
        let mut counters = self.lock()?;
        let mut record = self
            .record(record_id)?
            .ok_or_else(|| StorageError::UnknownRecord(record_id.to_string()))?;
        if record.status == Status::Tombstoned {
            return Err(StorageError::Invalid(format!(
                "record {record_id} is a tombstone"
            )));
        }
        let status = status.unwrap_or(record.status);
        record.status = status;
        if quality.is_some() {
            record.quality = quality;
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_RECORDS)?,
            record_key(record_id),
            crate::codec::encode_record(&record)?,
        );
        let mut stats = self.stats(record.datanet_id)?;
        stats.last_sequence = counters.sequence + 1;
        batch.put_cf(
            self.cf(CF_STATS)?,
            datanet_key(record.datanet_id),
            encode(&stats)?,
        );
        let entry = LogEntry::StatusChanged {
            record_id: *record_id,
            status,
        };
        let (next_chunk, next_datanet) = (counters.next_chunk_id, counters.next_datanet_id);
        self.commit(&mut counters, batch, &entry, next_chunk, next_datanet)
    }

    /// Removes a record by storing a tombstone version that supersedes it. The old versions
    /// stay readable as history. `by` is who removes it (the tombstone's contributor; the
    /// record's own contributor under `Committer::Contributors`), and must be allowed to
    /// (see [`Store::version_act`]); `now_ms` the time.
    pub fn tombstone(
        &self,
        record_id: &RecordId,
        by: Committer,
        now_ms: i64,
    ) -> Result<BatchReceipt> {
        let old = self
            .record(record_id)?
            .ok_or_else(|| StorageError::UnknownRecord(record_id.to_string()))?;
        let content = format!("{{\"tombstone_of\":\"{record_id}\"}}");
        let contributor = by.address().unwrap_or(old.contributor);
        let mut tombstone = NewRecord::new(content, None, contributor);
        tombstone.license = old.license.clone();
        tombstone.created_at_ms = now_ms;
        tombstone.supersedes = Some(*record_id);
        let by_id = sorted_by_id(std::slice::from_ref(&tombstone));
        let prepared = PreparedBatch {
            datanet_id: old.datanet_id,
            records: vec![tombstone],
            by_id,
            committer: by,
            encoded: None,
        };
        self.commit_batch(prepared, Some(Status::Tombstoned))
            .map_err(|uncommitted| uncommitted.error)
    }
}

/// A batch that was not committed: why, and its records when a check refused them before
/// anything was written (empty when the failure came later).
#[derive(Debug)]
pub struct Uncommitted {
    /// Why.
    pub error: StorageError,
    /// The records, when a check refused the batch.
    pub records: Vec<NewRecord>,
}

/// What the checks of a batch found, with the writer lock still held.
struct CheckedBatch<'a> {
    counters: std::sync::MutexGuard<'a, super::Counters>,
    status: Status,
    versions: Vec<Version>,
}

/// A batch ready for [`Store::try_commit_prepared`] (see [`Store::prepare_batch`]).
pub struct PreparedBatch {
    datanet_id: u32,
    records: Vec<NewRecord>,
    /// Positions in record-id order.
    by_id: Vec<usize>,
    /// Whose word its `supersedes` links are.
    committer: Committer,
    /// The record writes, and what they were built for.
    encoded: Option<(Stamp, RecordWrites)>,
}

impl PreparedBatch {
    /// Its records.
    pub fn records(&self) -> &[NewRecord] {
        &self.records
    }

    /// Its chunks, over all its records.
    pub fn chunks(&self) -> u64 {
        self.records.iter().map(|r| r.chunks.len() as u64).sum()
    }
}

/// Positions of `records` in record-id order: the records go into the batch in key order,
/// which RocksDB's memtable inserts fast (its skiplist starts each insert from where the last
/// one was).
fn sorted_by_id(records: &[NewRecord]) -> Vec<usize> {
    // Ids are hashes: their first eight bytes nearly always decide, compared as one integer.
    let mut by_id: Vec<(u64, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (id_prefix(&r.record_id), i))
        .collect();
    by_id.sort_unstable_by(|&(prefix_a, a), &(prefix_b, b)| {
        prefix_a
            .cmp(&prefix_b)
            .then_with(|| records[a].record_id.0.cmp(&records[b].record_id.0))
    });
    by_id.into_iter().map(|(_, i)| i).collect()
}

/// The first eight bytes of an id, as a big-endian integer (ordered as the bytes are).
fn id_prefix(id: &RecordId) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&id.0[..8]);
    u64::from_be_bytes(prefix)
}
