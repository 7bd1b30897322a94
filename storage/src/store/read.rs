//! Reads: point lookups and ordered scans. Scans page through RocksDB iterators and decode
//! lazily, so a caller that stops early pays only for what it read.

use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::Store;
use super::pages::page_entries;
use crate::codec::{decode, decode_datanet};
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Address, Datanet, DatanetId, DatanetStats, Grant, LogEntry, Record, RecordId};

impl Store {
    /// The record with this id, any version or status.
    pub fn record(&self, id: &RecordId) -> Result<Option<Record>> {
        let cf = self.cf(CF_RECORDS)?;
        match self.db.get_pinned_cf(cf, id.0).map_err(|e| self.rocks(e))? {
            Some(bytes) => decode_record(&id.0, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// For each id, whether a record with it is stored (one batched lookup).
    pub fn existing_records(&self, ids: &[RecordId]) -> Result<Vec<bool>> {
        let cf = self.cf(CF_RECORDS)?;
        self.db
            .batched_multi_get_cf(cf, ids.iter().map(|id| &id.0), false)
            .into_iter()
            .map(|found| Ok(found.map_err(|e| self.rocks(e))?.is_some()))
            .collect()
    }

    /// The id of the version that replaced this record, if any.
    pub fn superseded_by(&self, id: &RecordId) -> Result<Option<RecordId>> {
        let cf = self.cf(CF_SUPERSEDED_BY)?;
        match self.db.get_pinned_cf(cf, id.0).map_err(|e| self.rocks(e))? {
            Some(bytes) => {
                let array: [u8; 32] =
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corruption {
                            cf: CF_SUPERSEDED_BY,
                            key: hex::encode(id.0),
                            reason: "expected a 32-byte record id".into(),
                        })?;
                Ok(Some(RecordId(array)))
            }
            None => Ok(None),
        }
    }

    /// The Datanet named `name`.
    pub fn datanet(&self, name: &str) -> Result<Datanet> {
        let cf = self.cf(CF_DATANETS)?;
        match self
            .db
            .get_pinned_cf(cf, name.as_bytes())
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => decode_datanet(CF_DATANETS, name.as_bytes(), &bytes),
            None => Err(StorageError::UnknownDatanet(name.to_string())),
        }
    }

    /// The Datanet with numeric id `id`.
    pub fn datanet_by_id(&self, id: DatanetId) -> Result<Datanet> {
        self.datanets()?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| StorageError::UnknownDatanet(format!("#{id}")))
    }

    /// Every Datanet, by name.
    pub fn datanets(&self) -> Result<Vec<Datanet>> {
        let cf = self.cf(CF_DATANETS)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                decode_datanet(CF_DATANETS, &key, &value)
            })
            .collect()
    }

    /// The counters of a Datanet.
    pub fn stats(&self, id: DatanetId) -> Result<DatanetStats> {
        let cf = self.cf(CF_STATS)?;
        let key = datanet_key(id);
        match self.db.get_pinned_cf(cf, key).map_err(|e| self.rocks(e))? {
            Some(bytes) => decode(CF_STATS, &key, &bytes),
            None => Err(StorageError::UnknownDatanet(format!("#{id}"))),
        }
    }

    /// Every record version of a Datanet, in ingest order.
    pub fn scan_records(&self, id: DatanetId) -> Result<RecordScan<'_>> {
        let mut read = ReadOptions::default();
        let upper = match id.checked_add(1) {
            Some(next) => next.to_be_bytes().to_vec(),
            None => vec![0xff; 17],
        };
        read.set_iterate_upper_bound(upper);
        let start = datanet_key(id);
        let pages = self.db.iterator_cf_opt(
            self.cf(CF_BATCH_PAGES)?,
            read,
            IteratorMode::From(&start, Direction::Forward),
        );
        Ok(RecordScan {
            store: self,
            pages,
            queue: Vec::new().into_iter(),
            done: false,
        })
    }

    /// The records with these ids, in this order; a missing one is corruption (callers pass ids
    /// that the store's own indexes listed).
    pub(crate) fn records_by_id(&self, ids: &[RecordId]) -> Result<Vec<Record>> {
        let cf = self.cf(CF_RECORDS)?;
        let found = self
            .db
            .batched_multi_get_cf(cf, ids.iter().map(|id| &id.0), false);
        ids.iter()
            .zip(found)
            .map(|(id, found)| match found.map_err(|e| self.rocks(e))? {
                Some(bytes) => crate::codec::decode_record(CF_RECORDS, &id.0, &bytes),
                None => Err(StorageError::Corruption {
                    cf: CF_RECORDS,
                    key: hex::encode(id.0),
                    reason: "listed in a batch page but missing".into(),
                }),
            })
            .collect()
    }

    /// Calls `visit` with each key and value of `cf` that starts with `prefix`, in key order.
    pub(super) fn scan_prefix(
        &self,
        cf_name: &'static str,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let cf = self.cf(cf_name)?;
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(prefix) {
                break;
            }
            visit(&key, &value)?;
        }
        Ok(())
    }

    /// Contributors of a Datanet with their record counts, by address.
    pub fn contributors(&self, id: DatanetId) -> Result<Vec<(Address, u64)>> {
        let mut out = Vec::new();
        self.scan_prefix(CF_CONTRIBUTORS, &datanet_key(id), |key, value| {
            let address: [u8; 20] = key[4..].try_into().map_err(|_| StorageError::Corruption {
                cf: CF_CONTRIBUTORS,
                key: hex::encode(key),
                reason: "bad key length".into(),
            })?;
            out.push((
                Address(address),
                crate::codec::decode_u64(CF_CONTRIBUTORS, key, value)?,
            ));
            Ok(())
        })?;
        Ok(out)
    }

    /// Log entries with sequence numbers greater than `after`, in order.
    pub fn log_since(&self, after: u64) -> Result<Vec<(u64, LogEntry)>> {
        let cf = self.cf(CF_LOG)?;
        let from = (after + 1).to_be_bytes();
        self.db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward))
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                let sequence = crate::codec::decode_u64(CF_LOG, &key, &key)?;
                Ok((sequence, decode(CF_LOG, &key, &value)?))
            })
            .collect()
    }

    /// Read grants of a Datanet.
    pub fn grants(&self, id: DatanetId) -> Result<Vec<Grant>> {
        let mut out = Vec::new();
        self.scan_prefix(CF_GRANTS, &datanet_key(id), |key, value| {
            out.push(decode(CF_GRANTS, key, value)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether `who` holds a read grant on the Datanet.
    pub fn has_grant(&self, id: DatanetId, who: &Address) -> Result<bool> {
        let cf = self.cf(CF_GRANTS)?;
        Ok(self
            .db
            .get_pinned_cf(cf, datanet_address_key(id, who))
            .map_err(|e| self.rocks(e))?
            .is_some())
    }
}

/// Decodes a record and checks that its content still hashes to its key: the check that
/// catches a damaged value that happens to decode.
fn decode_record(key: &[u8; 32], bytes: &[u8]) -> Result<Record> {
    let record = crate::codec::decode_record(CF_RECORDS, key, bytes)?;
    if record.record_id.0 != *key || crate::model::record_id_of(&record.content).0 != *key {
        return Err(StorageError::Corruption {
            cf: CF_RECORDS,
            key: hex::encode(key),
            reason: "content does not hash to the record id".into(),
        });
    }
    Ok(record)
}

/// Iterator over a Datanet's records in ingest order, a batch page at a time; see
/// `Store::scan_records`.
pub struct RecordScan<'a> {
    store: &'a Store,
    pages: rocksdb::DBIteratorWithThreadMode<'a, rocksdb::DB>,
    queue: std::vec::IntoIter<Record>,
    done: bool,
}

impl RecordScan<'_> {
    fn next_page(&mut self) -> Result<()> {
        match self.pages.next() {
            Some(item) => {
                let (key, value) = item.map_err(|e| self.store.rocks(e))?;
                let ids: Vec<RecordId> = page_entries(&key, &value)?
                    .into_iter()
                    .map(|(_, id)| id)
                    .collect();
                self.queue = self.store.records_by_id(&ids)?.into_iter();
            }
            None => self.done = true,
        }
        Ok(())
    }
}

impl Iterator for RecordScan<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.queue.next() {
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.next_page() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
