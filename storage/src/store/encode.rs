//! The writes of an ingest batch that depend only on its records and on where the store's
//! counters stand when it commits: each record's stored value, the contributor index, the batch
//! pages. They can be built off the writer lock, before the commit, for an assumed start
//! ([`BatchStart`]); the commit uses them only when the assumption holds.
//!
//! Invariant: a record's value is exactly the postcard encoding of the `Record` it stores;
//! [`StoredRecord`] encodes it from a borrowed `NewRecord` (field for field the layout of
//! `Record`, tested against it) so that nothing is moved or copied before the batch.

use rocksdb::WriteBatch;
use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::Store;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Address, DatanetId, NewChunk, NewRecord, RecordId, Status};

/// Where a batch starts: its sequence number and its first chunk id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchStart {
    /// The batch's sequence number.
    pub sequence: u64,
    /// Its first chunk's id.
    pub first_chunk_id: u64,
}

impl BatchStart {
    /// Where the next batch starts once a batch of `chunks` chunks committed from here.
    pub fn after(self, chunks: u64) -> Self {
        Self {
            sequence: self.sequence + 1,
            first_chunk_id: self.first_chunk_id + chunks,
        }
    }
}

/// What a batch's record writes depend on besides its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) datanet_id: DatanetId,
    pub(crate) status: Status,
    pub(crate) start: BatchStart,
}

/// The record-dependent writes of a batch, and the chunk id after its last chunk.
pub(crate) struct RecordWrites {
    pub(crate) batch: WriteBatch,
    pub(crate) end_chunk_id: u64,
}

impl Store {
    /// Builds the record-dependent writes of a batch: records in `by_id` order (key order, so
    /// RocksDB's memtable inserts are short hops), contributor-index keys in key order, pages.
    pub(crate) fn record_writes(
        &self,
        records: &[NewRecord],
        by_id: &[usize],
        versions: &[u32],
        stamp: &Stamp,
    ) -> Result<RecordWrites> {
        // Sized up front: a growing batch would copy itself over and over.
        let capacity: usize = records
            .iter()
            .map(|r| r.content.len() + 320 + 64 * r.chunks.len())
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(capacity + 4096);
        let mut first_chunk_ids = Vec::with_capacity(records.len());
        let mut next_chunk_id = stamp.start.first_chunk_id;
        for record in records {
            first_chunk_ids.push(next_chunk_id);
            next_chunk_id += record.chunks.len() as u64;
        }
        let records_cf = self.cf(CF_RECORDS)?;
        let mut value = Vec::new();
        for &i in by_id {
            let record = &records[i];
            let stored = StoredRecord {
                new: record,
                datanet_id: stamp.datanet_id,
                version: versions[i],
                status: stamp.status,
                sequence: stamp.start.sequence,
                first_chunk_id: first_chunk_ids[i],
            };
            value.clear();
            value.reserve(record.content.len() + 16 * record.chunks.len() + 256);
            value = postcard::to_extend(&stored, std::mem::take(&mut value))
                .map_err(|e| StorageError::Internal(format!("encode: {e}")))?;
            batch.put_cf(records_cf, record_key(&record.record_id), &value);
        }
        let mut index_keys: Vec<[u8; 64]> = records
            .iter()
            .map(|r| {
                contributor_record_key(
                    stamp.datanet_id,
                    &r.contributor,
                    r.created_at_ms,
                    &r.record_id,
                )
            })
            .collect();
        index_keys.sort_unstable();
        let by_contributor_cf = self.cf(CF_CONTRIBUTOR_RECORDS)?;
        for key in &index_keys {
            batch.put_cf(by_contributor_cf, key, []);
        }
        let page_entries: Vec<(u64, RecordId)> = first_chunk_ids
            .into_iter()
            .zip(records.iter().map(|r| r.record_id))
            .collect();
        super::pages::put_pages(
            self,
            &mut batch,
            stamp.datanet_id,
            stamp.start.sequence,
            &page_entries,
            next_chunk_id,
        )?;
        Ok(RecordWrites {
            batch,
            end_chunk_id: next_chunk_id,
        })
    }
}

/// A new record as it will be stored: serialises exactly as the `Record` with these fields.
pub(crate) struct StoredRecord<'a> {
    pub(crate) new: &'a NewRecord,
    pub(crate) datanet_id: DatanetId,
    pub(crate) version: u32,
    pub(crate) status: Status,
    pub(crate) sequence: u64,
    pub(crate) first_chunk_id: u64,
}

impl Serialize for StoredRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let new = self.new;
        // The fields of `Record`, in its order.
        let mut s = serializer.serialize_struct("Record", 15)?;
        s.serialize_field("record_id", &new.record_id)?;
        s.serialize_field("datanet_id", &self.datanet_id)?;
        s.serialize_field::<Address>("contributor", &new.contributor)?;
        s.serialize_field("signature", &new.signature)?;
        s.serialize_field("license", &new.license)?;
        s.serialize_field("created_at_ms", &new.created_at_ms)?;
        s.serialize_field("version", &self.version)?;
        s.serialize_field("supersedes", &new.supersedes)?;
        s.serialize_field("quality", &new.quality)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("content", &new.content)?;
        s.serialize_field("text_span", &new.text_span)?;
        s.serialize_field("sequence", &self.sequence)?;
        s.serialize_field("first_chunk_id", &self.first_chunk_id)?;
        s.serialize_field("chunk_ranges", &ChunkRanges(&new.chunks))?;
        s.end()
    }
}

/// Chunks as `Record::chunk_ranges` serialises them: a sequence of (start, end) byte pairs.
struct ChunkRanges<'a>(&'a [NewChunk]);

impl Serialize for ChunkRanges<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for chunk in self.0 {
            seq.serialize_element(&(chunk.start_byte, chunk.end_byte))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::encode;
    use crate::model::Record;

    proptest! {
        /// A new record encodes exactly as the `Record` it becomes, so values built from
        /// borrowed records decode as `Record`s.
        #[test]
        fn a_stored_record_encodes_as_its_record(
            text in "[a-z ]{0,200}",
            signature in proptest::option::of(proptest::collection::vec(any::<u8>(), 65)),
            quality in proptest::option::of(0.0f32..=1.0),
            supersedes in proptest::option::of(any::<[u8; 32]>()),
            created_at_ms in any::<i64>(),
            version in 1u32..5,
            sequence in any::<u64>(),
            first_chunk_id in 0u64..1 << 60,
            status in prop_oneof![Just(Status::Approved), Just(Status::Pending), Just(Status::Tombstoned)],
        ) {
            let literal = serde_json::to_string(&text).unwrap();
            let content = format!("{{\"text\":{literal}}}");
            let span = Some((8, 8 + literal.len() as u32));
            let mut new = NewRecord::new(content, span, Address([7; 20]));
            new.signature = signature;
            new.license = "cc-by".into();
            new.created_at_ms = created_at_ms;
            new.supersedes = supersedes.map(RecordId);
            new.quality = quality;
            if !text.is_empty() {
                let end = text.len() as u32;
                new.set_chunks(vec![NewChunk { start_byte: 0, end_byte: end }]).unwrap();
            }
            let stored = StoredRecord {
                new: &new,
                datanet_id: 3,
                version,
                status,
                sequence,
                first_chunk_id,
            };
            let record = Record {
                record_id: new.record_id,
                datanet_id: 3,
                contributor: new.contributor,
                signature: new.signature.clone(),
                license: new.license.clone(),
                created_at_ms,
                version,
                supersedes: new.supersedes,
                quality,
                status,
                content: new.content.clone(),
                text_span: new.text_span,
                sequence,
                first_chunk_id,
                chunk_ranges: new.chunks.iter().map(|c| (c.start_byte, c.end_byte)).collect(),
            };
            prop_assert_eq!(encode(&stored).unwrap(), encode(&record).unwrap());
        }
    }
}
