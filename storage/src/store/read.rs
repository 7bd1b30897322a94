//! Reads: point lookups and ordered scans. Scans page through RocksDB iterators and decode
//! lazily, so a caller that stops early pays only for what it read.

use rocksdb::{Direction, IteratorMode, ReadOptions};

use super::Store;
use crate::codec::decode;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{
    Address, Chunk, ChunkRanges, Datanet, DatanetId, DatanetStats, Grant, LogEntry, Record,
    RecordId,
};

/// Records fetched per `multi_get` while scanning a Datanet.
const SCAN_PAGE: usize = 256;

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
            Some(bytes) => decode(CF_DATANETS, name.as_bytes(), &bytes),
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
                decode(CF_DATANETS, &key, &value)
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
        read.set_iterate_upper_bound(
            id.checked_add(1)
                .map(|next| next.to_be_bytes().to_vec())
                .unwrap_or_else(|| vec![0xff; 17]),
        );
        let start = datanet_key(id);
        let iter = self.db.iterator_cf_opt(
            self.cf(CF_RECORDS_BY_DATANET)?,
            read,
            IteratorMode::From(&start, Direction::Forward),
        );
        Ok(RecordScan {
            store: self,
            ids: iter,
            page: Vec::new().into_iter(),
            done: false,
        })
    }

    /// Contributors of a Datanet with their record counts, by address.
    pub fn contributors(&self, id: DatanetId) -> Result<Vec<(Address, u64)>> {
        let cf = self.cf(CF_CONTRIBUTORS)?;
        let prefix = datanet_key(id);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let corrupt = |reason: &str| StorageError::Corruption {
                cf: CF_CONTRIBUTORS,
                key: hex::encode(&key),
                reason: reason.into(),
            };
            let address: [u8; 20] = key[4..].try_into().map_err(|_| corrupt("bad key length"))?;
            out.push((
                Address(address),
                crate::codec::decode_u64(CF_CONTRIBUTORS, &key, &value)?,
            ));
        }
        Ok(out)
    }

    /// The chunks of a record, in order.
    pub fn chunks_of(&self, record: &Record) -> Result<Vec<Chunk>> {
        self.chunks_in(
            record.first_chunk_id,
            record.first_chunk_id + u64::from(record.chunk_count),
        )
    }

    /// Chunks with ids in `start..end`, in id order. Each record's chunk ranges are one entry
    /// under its first chunk id, found with `seek_for_prev`; each record's text is read and
    /// unescaped once for all its chunks.
    pub fn chunks_in(&self, start: u64, end: u64) -> Result<Vec<Chunk>> {
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        if start >= end {
            return Ok(out);
        }
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_CHUNKS)?);
        iter.seek_for_prev(chunk_key(start));
        if !iter.valid() {
            iter.seek(chunk_key(start));
        }
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let first = crate::codec::decode_u64(CF_CHUNKS, key, key)?;
            if first >= end {
                break;
            }
            let entry: ChunkRanges = decode(CF_CHUNKS, key, value)?;
            let wanted = |ordinal: usize| {
                (first + ordinal as u64 >= start) && (first + (ordinal as u64) < end)
            };
            if (0..entry.ranges.len()).any(wanted) {
                let text = self.text_of(&entry.record_id, key)?;
                for (ordinal, range) in entry.ranges.iter().enumerate().filter(|(o, _)| wanted(*o))
                {
                    out.push(chunk_from(
                        first + ordinal as u64,
                        ordinal as u32,
                        &entry,
                        *range,
                        &text,
                        key,
                    )?);
                }
            }
            iter.next();
        }
        iter.status().map_err(|e| self.rocks(e))?;
        Ok(out)
    }

    /// One chunk by id.
    pub fn chunk(&self, chunk_id: u64) -> Result<Option<Chunk>> {
        Ok(self.chunks_in(chunk_id, chunk_id.saturating_add(1))?.pop())
    }

    /// The text of the record a chunk (at `chunk_key`) points to.
    fn text_of(&self, record_id: &RecordId, chunk_key: &[u8]) -> Result<String> {
        let corrupt = |reason: String| StorageError::Corruption {
            cf: CF_CHUNKS,
            key: hex::encode(chunk_key),
            reason,
        };
        let record = self
            .record(record_id)?
            .ok_or_else(|| corrupt(format!("its record {record_id} is missing")))?;
        record
            .text()?
            .ok_or_else(|| corrupt(format!("its record {record_id} has no text")))
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
        let cf = self.cf(CF_GRANTS)?;
        let prefix = datanet_key(id);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(decode(CF_GRANTS, &key, &value)?);
        }
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

fn chunk_from(
    chunk_id: u64,
    ordinal: u32,
    entry: &ChunkRanges,
    (start, end): (u32, u32),
    text: &str,
    key: &[u8],
) -> Result<Chunk> {
    let slice = text
        .get(start as usize..end as usize)
        .ok_or_else(|| StorageError::Corruption {
            cf: CF_CHUNKS,
            key: hex::encode(key),
            reason: format!("range {start}..{end} outside its record's text"),
        })?;
    Ok(Chunk {
        chunk_id,
        record_id: entry.record_id,
        datanet_id: entry.datanet_id,
        ordinal,
        start_byte: start,
        end_byte: end,
        text: slice.to_string(),
    })
}

/// Decodes a record and checks that its content still hashes to its key: the check that
/// catches a damaged value that happens to decode.
fn decode_record(key: &[u8; 32], bytes: &[u8]) -> Result<Record> {
    let record: Record = decode(CF_RECORDS, key, bytes)?;
    if record.record_id.0 != *key || crate::hash::record_id_of(&record.content).0 != *key {
        return Err(StorageError::Corruption {
            cf: CF_RECORDS,
            key: hex::encode(key),
            reason: "content does not hash to the record id".into(),
        });
    }
    Ok(record)
}

/// Iterator over a Datanet's records in ingest order; see `Store::scan_records`.
pub struct RecordScan<'a> {
    store: &'a Store,
    ids: rocksdb::DBIteratorWithThreadMode<'a, rocksdb::DB>,
    page: std::vec::IntoIter<Result<Record>>,
    done: bool,
}

impl RecordScan<'_> {
    fn fill_page(&mut self) -> Result<()> {
        let mut ids = Vec::with_capacity(SCAN_PAGE);
        while ids.len() < SCAN_PAGE {
            match self.ids.next() {
                Some(item) => {
                    let (key, value) = item.map_err(|e| self.store.rocks(e))?;
                    let id: [u8; 32] =
                        value
                            .as_ref()
                            .try_into()
                            .map_err(|_| StorageError::Corruption {
                                cf: CF_RECORDS_BY_DATANET,
                                key: hex::encode(&key),
                                reason: "expected a 32-byte record id".into(),
                            })?;
                    ids.push(id);
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        let cf = self.store.cf(CF_RECORDS)?;
        let found = self.store.db.batched_multi_get_cf(cf, ids.iter(), false);
        let page: Vec<Result<Record>> = ids
            .iter()
            .zip(found)
            .map(
                |(id, found)| match found.map_err(|e| self.store.rocks(e))? {
                    Some(bytes) => decode_record(id, &bytes),
                    None => Err(StorageError::Corruption {
                        cf: CF_RECORDS,
                        key: hex::encode(id),
                        reason: "listed in records_by_datanet but missing".into(),
                    }),
                },
            )
            .collect();
        self.page = page.into_iter();
        Ok(())
    }
}

impl Iterator for RecordScan<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.page.next() {
                return Some(record);
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill_page() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
