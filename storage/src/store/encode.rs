//! The writes of an ingest batch that depend only on its records and on where the store's
//! counters stand when it commits: each record's stored value, the contributor index, the batch
//! pages. They can be built off the writer lock, before the commit, for an assumed start
//! ([`BatchStart`]); the commit uses them only when the assumption holds.
//!
//! Invariant: a record's value is exactly `codec::encode_record` of the `Record` it stores (its
//! postcard encoding, then its extension); [`StoredRecord`] writes it by hand from a borrowed `NewRecord` (field for field the layout
//! `RecordView` reads; a property test holds it to `codec::encode(&Record)`), so that nothing
//! is moved or copied before the batch.

use rocksdb::WriteBatch;

use super::Store;
use crate::acts::{RecordExtension, VersionAct};
use crate::error::Result;
use crate::keys::*;
use crate::model::{DatanetId, NewRecord, RecordId, Status};

/// A new record's version number, and who stored it over the version it supersedes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) number: u32,
    pub(crate) act: Option<VersionAct>,
}

impl Version {
    /// A first version.
    pub(crate) const FIRST: Self = Self {
        number: 1,
        act: None,
    };
}

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
        versions: &[Version],
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
                version: versions[i].number,
                act: versions[i].act,
                status: stamp.status,
                sequence: stamp.start.sequence,
                first_chunk_id: first_chunk_ids[i],
            };
            value.clear();
            stored.encode_into(&mut value);
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
        // Keys differ early (Datanet and address, then time): their first 16 bytes compared
        // as one integer nearly always decide.
        index_keys.sort_unstable_by(|a, b| {
            key_prefix(a)
                .cmp(&key_prefix(b))
                .then_with(|| a[16..].cmp(&b[16..]))
        });
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

/// A new record as it will be stored: encodes exactly as the `Record` with these fields.
pub(crate) struct StoredRecord<'a> {
    pub(crate) new: &'a NewRecord,
    pub(crate) datanet_id: DatanetId,
    pub(crate) version: u32,
    pub(crate) act: Option<VersionAct>,
    pub(crate) status: Status,
    pub(crate) sequence: u64,
    pub(crate) first_chunk_id: u64,
}

impl StoredRecord<'_> {
    /// Appends the postcard encoding of the `Record` to `out`, written by hand as
    /// `RecordView` reads it (see `view.rs` for the layout): serde's serializer writes the
    /// 85 bytes of ids and addresses one `u8` call at a time, which cost more than the rest.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let new = self.new;
        out.extend_from_slice(&new.record_id.0);
        varint(out, u64::from(self.datanet_id));
        out.extend_from_slice(&new.contributor.0);
        match &new.signature {
            Some(signature) => {
                out.push(1);
                bytes(out, signature);
            }
            None => out.push(0),
        }
        bytes(out, new.license.as_bytes());
        varint(
            out,
            ((new.created_at_ms << 1) ^ (new.created_at_ms >> 63)) as u64,
        );
        varint(out, u64::from(self.version));
        match &new.supersedes {
            Some(old) => {
                out.push(1);
                out.extend_from_slice(&old.0);
            }
            None => out.push(0),
        }
        match new.quality {
            Some(quality) => {
                out.push(1);
                out.extend_from_slice(&quality.to_le_bytes());
            }
            None => out.push(0),
        }
        varint(out, status_index(self.status));
        bytes(out, new.content.as_bytes());
        match new.text_span {
            Some((start, end)) => {
                out.push(1);
                varint(out, u64::from(start));
                varint(out, u64::from(end));
            }
            None => out.push(0),
        }
        varint(out, self.sequence);
        varint(out, self.first_chunk_id);
        varint(out, new.chunks.len() as u64);
        for chunk in &new.chunks {
            varint(out, u64::from(chunk.start_byte));
            varint(out, u64::from(chunk.end_byte));
        }
        let extension = RecordExtension {
            scheme: new.signature.as_ref().and(new.signature_scheme),
            act: self.act,
        };
        extension.encode_into(out);
    }
}

/// The first 16 bytes of a key, as a big-endian integer (ordered as the bytes are).
fn key_prefix(key: &[u8; 64]) -> u128 {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&key[..16]);
    u128::from_be_bytes(prefix)
}

/// A status as postcard writes an enum: its variant index.
fn status_index(status: Status) -> u64 {
    match status {
        Status::Pending => 0,
        Status::Approved => 1,
        Status::Rejected => 2,
        Status::Slashed => 3,
        Status::Tombstoned => 4,
    }
}

/// A LEB128 varint.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-prefixed byte string.
fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::acts::{ActingRole, SignatureScheme};
    use crate::codec::encode_record;
    use crate::model::{Address, NewChunk, Record};

    proptest! {
        /// A new record encodes exactly as the `Record` it becomes, so values built from
        /// borrowed records decode as `Record`s.
        #[test]
        fn a_stored_record_encodes_as_its_record(
            text in "[a-z ]{0,200}",
            signature in proptest::option::of(proptest::collection::vec(any::<u8>(), 65)),
            quality in proptest::option::of(0.0f32..=1.0),
            supersedes in proptest::option::of(any::<[u8; 32]>()),
            created_at_ms in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(-1i64)],
            version in 1u32..5,
            eip712 in any::<bool>(),
            acted in proptest::option::of(any::<[u8; 20]>()),
            sequence in prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..200],
            first_chunk_id in prop_oneof![0u64..1 << 60, Just(u64::MAX)],
            datanet_id in prop_oneof![any::<u32>(), 0u32..300],
            license in "[a-zA-Z0-9 .-]{0,140}",
            status in prop_oneof![
                Just(Status::Pending),
                Just(Status::Approved),
                Just(Status::Rejected),
                Just(Status::Slashed),
                Just(Status::Tombstoned),
            ],
        ) {
            let literal = serde_json::to_string(&text).unwrap();
            let content = format!("{{\"text\":{literal}}}");
            let span = Some((8, 8 + literal.len() as u32));
            let mut new = NewRecord::new(content, span, Address([7; 20]));
            new.signature_scheme = signature.as_ref().map(|_| {
                if eip712 { SignatureScheme::Eip712 } else { SignatureScheme::Eip191 }
            });
            new.signature = signature;
            new.license = license;
            new.created_at_ms = created_at_ms;
            new.supersedes = supersedes.map(RecordId);
            new.quality = quality;
            if !text.is_empty() {
                let end = text.len() as u32;
                new.set_chunks(vec![NewChunk { start_byte: 0, end_byte: end }]).unwrap();
            }
            let act = acted.map(|by| VersionAct { by: Address(by), role: ActingRole::Owner });
            let stored = StoredRecord {
                new: &new,
                datanet_id,
                version,
                act,
                status,
                sequence,
                first_chunk_id,
            };
            let record = Record {
                record_id: new.record_id,
                datanet_id,
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
                signature_scheme: new.signature_scheme,
                act,
            };
            let mut encoded = Vec::new();
            stored.encode_into(&mut encoded);
            prop_assert_eq!(encoded, encode_record(&record).unwrap());
        }
    }
}
