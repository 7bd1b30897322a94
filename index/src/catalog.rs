//! The catalog of one Datanet's index: which chunk each ordinal is, which record holds it, and
//! that record's status, license and liveness, with roaring bitmaps over ordinals derived
//! from them.
//!
//! Invariants:
//! - Ordinals are dense (`0..len`) and given in storage sequence order, then chunk id order;
//!   so ordinal `i` is the same chunk in every rebuild, and the full-text and vector indexes
//!   can address chunks by ordinal and catch up by ordinal alone.
//! - The catalog follows the storage `log` column family: `sequence` is the last entry
//!   applied. Applying an entry is idempotent with respect to the final state, because a
//!   record's status is read from storage (its newest value) and later entries only set it
//!   again.
//! - A record is *live* until a later version (or tombstone) supersedes it.

use std::collections::HashMap;
use std::path::Path;

use provdb_storage::{Address, DatanetId, LogEntry, RecordId, Status, Store};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::error::{IndexError, Result};
use crate::file::{read_snapshot, write_snapshot};

const MAGIC: &[u8; 8] = b"PDBCAT01";

/// What the catalog knows about one record version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordEntry {
    /// The record.
    pub record_id: RecordId,
    /// Its contributor.
    pub contributor: Address,
    /// Ordinal of its first chunk.
    pub first_ordinal: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// Curation status (newest known).
    pub status: Status,
    /// Index into the catalog's license names.
    pub license: u32,
    /// False once a later version or a tombstone supersedes it.
    pub live: bool,
}

/// The persisted part of the catalog.
#[derive(Default, Serialize, Deserialize)]
struct Persisted {
    datanet_id: DatanetId,
    sequence: u64,
    chunk_ids: Vec<u64>,
    records: Vec<RecordEntry>,
    licenses: Vec<String>,
}

/// Ordinals, records and filter bitmaps of one Datanet.
#[derive(Default)]
pub struct Catalog {
    state: Persisted,
    by_id: HashMap<RecordId, u32>,
    chunk_record: Vec<u32>,
    live: RoaringBitmap,
    by_status: HashMap<&'static str, RoaringBitmap>,
    by_license: Vec<RoaringBitmap>,
}

impl Catalog {
    /// An empty catalog of a Datanet (sequence 0).
    pub fn new(datanet_id: DatanetId) -> Self {
        Self {
            state: Persisted {
                datanet_id,
                ..Persisted::default()
            },
            ..Self::default()
        }
    }

    /// Loads the snapshot at `path`, or an empty catalog when there is none.
    pub fn load(path: &Path, datanet_id: DatanetId) -> Result<Self> {
        let Some(bytes) = read_snapshot(path, MAGIC)? else {
            return Ok(Self::new(datanet_id));
        };
        let state: Persisted = postcard::from_bytes(&bytes).map_err(|e| IndexError::Corrupt {
            path: path.into(),
            reason: format!("catalog does not decode: {e}"),
        })?;
        if state.datanet_id != datanet_id {
            return Err(IndexError::Corrupt {
                path: path.into(),
                reason: format!(
                    "catalog of datanet {} found where datanet {datanet_id} belongs",
                    state.datanet_id
                ),
            });
        }
        let mut catalog = Self {
            state,
            ..Self::default()
        };
        catalog.derive();
        Ok(catalog)
    }

    /// Writes the snapshot atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = postcard::to_stdvec(&self.state)
            .map_err(|e| IndexError::Internal(format!("catalog does not encode: {e}")))?;
        write_snapshot(path, MAGIC, &bytes)
    }

    fn derive(&mut self) {
        let records = std::mem::take(&mut self.state.records);
        self.by_id.clear();
        self.chunk_record.clear();
        self.live.clear();
        self.by_status.clear();
        self.by_license = vec![RoaringBitmap::new(); self.state.licenses.len()];
        for (index, entry) in records.iter().enumerate() {
            self.index_record(index as u32, entry);
        }
        self.state.records = records;
    }

    fn index_record(&mut self, index: u32, entry: &RecordEntry) {
        self.by_id.insert(entry.record_id, index);
        let range = entry.first_ordinal..entry.first_ordinal + entry.chunks;
        self.chunk_record.extend(range.clone().map(|_| index));
        if entry.live {
            self.live.insert_range(range.clone());
        }
        self.by_status
            .entry(entry.status.as_str())
            .or_default()
            .insert_range(range.clone());
        if let Some(bitmap) = self.by_license.get_mut(entry.license as usize) {
            bitmap.insert_range(range);
        }
    }

    /// The last storage sequence applied.
    pub fn sequence(&self) -> u64 {
        self.state.sequence
    }

    /// Number of chunk ordinals.
    pub fn len(&self) -> u32 {
        self.state.chunk_ids.len() as u32
    }

    /// True when no chunk is cataloged.
    pub fn is_empty(&self) -> bool {
        self.state.chunk_ids.is_empty()
    }

    /// The chunk id of an ordinal.
    pub fn chunk_id(&self, ordinal: u32) -> Option<u64> {
        self.state.chunk_ids.get(ordinal as usize).copied()
    }

    /// The chunk ids of ordinals `start..end`, in order.
    pub fn chunk_ids(&self, start: u32, end: u32) -> &[u64] {
        let end = (end as usize).min(self.state.chunk_ids.len());
        let start = (start as usize).min(end);
        &self.state.chunk_ids[start..end]
    }

    /// The record holding an ordinal.
    pub fn record_of(&self, ordinal: u32) -> Option<&RecordEntry> {
        let index = *self.chunk_record.get(ordinal as usize)?;
        self.state.records.get(index as usize)
    }

    /// Ordinals of live (neither superseded nor tombstoned) records.
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    /// Ordinals of records whose status is `status`.
    pub fn with_status(&self, status: Status) -> RoaringBitmap {
        self.by_status
            .get(status.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// Ordinals of records under `license`.
    pub fn with_license(&self, license: &str) -> RoaringBitmap {
        self.state
            .licenses
            .iter()
            .position(|l| l == license)
            .and_then(|i| self.by_license.get(i).cloned())
            .unwrap_or_default()
    }

    /// Applies the log entries after `self.sequence()`; returns how many were applied.
    pub fn apply(&mut self, store: &Store, entries: &[(u64, LogEntry)]) -> Result<usize> {
        let mut applied = 0;
        for (sequence, entry) in entries {
            if *sequence <= self.state.sequence {
                continue;
            }
            self.apply_one(store, entry)?;
            self.state.sequence = *sequence;
            applied += 1;
        }
        Ok(applied)
    }

    fn apply_one(&mut self, store: &Store, entry: &LogEntry) -> Result<()> {
        match entry {
            LogEntry::Ingest {
                datanet_id,
                record_ids,
                superseded,
                ..
            } if *datanet_id == self.state.datanet_id => {
                for record_id in record_ids {
                    let record = store.record(record_id)?.ok_or_else(|| {
                        IndexError::Internal(format!("logged record {record_id} is not stored"))
                    })?;
                    let license = self.license_index(&record.license);
                    let first_ordinal = self.len();
                    let chunks = record.chunk_count();
                    self.state
                        .chunk_ids
                        .extend((0..u64::from(chunks)).map(|c| record.first_chunk_id + c));
                    let entry = RecordEntry {
                        record_id: *record_id,
                        contributor: record.contributor,
                        first_ordinal,
                        chunks,
                        status: record.status,
                        license,
                        live: record.status != Status::Tombstoned,
                    };
                    let index = self.state.records.len() as u32;
                    self.index_record(index, &entry);
                    self.state.records.push(entry);
                }
                for old in superseded {
                    self.set_dead(old);
                }
            }
            LogEntry::StatusChanged { record_id, status } => {
                if let Some(&index) = self.by_id.get(record_id) {
                    self.set_status(index, *status);
                }
            }
            LogEntry::Ingest { .. }
            | LogEntry::DatanetCreated { .. }
            | LogEntry::GrantChanged { .. }
            | LogEntry::PriceSet { .. }
            | LogEntry::NearDuplicatePolicySet { .. } => {}
        }
        Ok(())
    }

    fn license_index(&mut self, license: &str) -> u32 {
        if let Some(i) = self.state.licenses.iter().position(|l| l == license) {
            return i as u32;
        }
        self.state.licenses.push(license.to_string());
        self.by_license.push(RoaringBitmap::new());
        (self.state.licenses.len() - 1) as u32
    }

    fn set_dead(&mut self, record_id: &RecordId) {
        let Some(&index) = self.by_id.get(record_id) else {
            return;
        };
        if let Some(entry) = self.state.records.get_mut(index as usize) {
            entry.live = false;
            self.live
                .remove_range(entry.first_ordinal..entry.first_ordinal + entry.chunks);
        }
    }

    fn set_status(&mut self, index: u32, status: Status) {
        let Some(entry) = self.state.records.get_mut(index as usize) else {
            return;
        };
        let range = entry.first_ordinal..entry.first_ordinal + entry.chunks;
        if let Some(old) = self.by_status.get_mut(entry.status.as_str()) {
            old.remove_range(range.clone());
        }
        entry.status = status;
        self.by_status
            .entry(status.as_str())
            .or_default()
            .insert_range(range);
    }
}
