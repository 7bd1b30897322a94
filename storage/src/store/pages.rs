//! Batch pages: how records are listed and how chunks are found, with about one key per
//! 4,096 records instead of one or more per record.
//!
//! - `batch_pages` (datanet ‖ sequence ‖ page number) holds the records of one ingest batch
//!   in order, 4,096 per page; an entry is the record's first chunk id (u64, big-endian) and
//!   its id (32 bytes), fixed width, so a page is searched in place.
//! - `chunk_pages` (first chunk id of a page that has chunks) holds that page's `batch_pages`
//!   key. The record holding chunk `c` is found by `seek_for_prev(c)` there, then a binary
//!   search of the page for the last entry whose first chunk id is `<= c`.
//!
//! Invariant: chunk ids are dense and increasing in commit order, so the pages' first chunk
//! ids are increasing, and a record's chunks are `first_chunk_id..first_chunk_id + count`.

use rocksdb::WriteBatch;

use super::Store;
use crate::codec::decode_u64;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Chunk, DatanetId, Record, RecordId};

/// Records per page.
pub(crate) const PAGE_RECORDS: usize = 4096;
const ENTRY_BYTES: usize = 40;

/// Adds the pages of a batch whose records (in order) start at the given chunk ids;
/// `end_chunk_id` is one past the batch's last chunk.
pub(crate) fn put_pages(
    store: &Store,
    batch: &mut WriteBatch,
    datanet_id: DatanetId,
    sequence: u64,
    entries: &[(u64, RecordId)],
    end_chunk_id: u64,
) -> Result<()> {
    let (pages_cf, chunk_pages_cf) = (store.cf(CF_BATCH_PAGES)?, store.cf(CF_CHUNK_PAGES)?);
    let pages: Vec<&[(u64, RecordId)]> = entries.chunks(PAGE_RECORDS).collect();
    for (number, page) in pages.iter().enumerate() {
        let key = batch_page_key(datanet_id, sequence, number as u32);
        let mut value = Vec::with_capacity(page.len() * ENTRY_BYTES);
        for (first_chunk_id, record_id) in page.iter() {
            value.extend_from_slice(&first_chunk_id.to_be_bytes());
            value.extend_from_slice(&record_id.0);
        }
        batch.put_cf(pages_cf, key, value);
        let page_first = page.first().map(|e| e.0).unwrap_or(end_chunk_id);
        let page_end = pages
            .get(number + 1)
            .and_then(|p| p.first())
            .map(|e| e.0)
            .unwrap_or(end_chunk_id);
        if page_end > page_first {
            batch.put_cf(chunk_pages_cf, chunk_key(page_first), key);
        }
    }
    Ok(())
}

/// The entries of a stored page.
pub(crate) fn page_entries(key: &[u8], bytes: &[u8]) -> Result<Vec<(u64, RecordId)>> {
    if !bytes.len().is_multiple_of(ENTRY_BYTES) {
        return Err(StorageError::Corruption {
            cf: CF_BATCH_PAGES,
            key: hex::encode(key),
            reason: format!(
                "page of {} bytes is not a whole number of entries",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| {
            let mut first = [0u8; 8];
            first.copy_from_slice(&entry[..8]);
            let mut id = [0u8; 32];
            id.copy_from_slice(&entry[8..]);
            (u64::from_be_bytes(first), RecordId(id))
        })
        .collect())
}

impl Store {
    /// Chunks with ids in `start..end`, in id order. Each record's text is unescaped once for
    /// all of its chunks.
    pub fn chunks_in(&self, start: u64, end: u64) -> Result<Vec<Chunk>> {
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(1 << 16) as usize);
        if start >= end {
            return Ok(out);
        }
        let pages_cf = self.cf(CF_BATCH_PAGES)?;
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_CHUNK_PAGES)?);
        iter.seek_for_prev(chunk_key(start));
        if !iter.valid() {
            iter.seek(chunk_key(start));
        }
        while let (Some(key), Some(page_key)) = (iter.key(), iter.value()) {
            if decode_u64(CF_CHUNK_PAGES, key, key)? >= end {
                break;
            }
            let bytes = self
                .db
                .get_pinned_cf(pages_cf, page_key)
                .map_err(|e| self.rocks(e))?
                .ok_or_else(|| StorageError::Corruption {
                    cf: CF_CHUNK_PAGES,
                    key: hex::encode(key),
                    reason: "its page is missing".into(),
                })?;
            let wanted = records_touching(page_key, &bytes, start, end)?;
            for record in self.records_by_id(&wanted)? {
                push_chunks(&record, start, end, &mut out)?;
            }
            iter.next();
        }
        iter.status().map_err(|e| self.rocks(e))?;
        Ok(out)
    }

    /// The chunks of a record, in order.
    pub fn chunks_of(&self, record: &Record) -> Result<Vec<Chunk>> {
        let mut out = Vec::with_capacity(record.chunk_ranges.len());
        push_chunks(record, 0, u64::MAX, &mut out)?;
        Ok(out)
    }

    /// One chunk by id.
    pub fn chunk(&self, chunk_id: u64) -> Result<Option<Chunk>> {
        Ok(self.chunks_in(chunk_id, chunk_id.saturating_add(1))?.pop())
    }
}

/// The ids of a page's records that may hold chunks in `start..end`: from the last entry whose
/// first chunk id is `<= start` to the last whose first chunk id is `< end`, found by binary
/// search over the fixed-width entries without decoding the page.
fn records_touching(key: &[u8], page: &[u8], start: u64, end: u64) -> Result<Vec<RecordId>> {
    if !page.len().is_multiple_of(ENTRY_BYTES) {
        return page_entries(key, page).map(|_| Vec::new());
    }
    let count = page.len() / ENTRY_BYTES;
    let first_of = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&page[i * ENTRY_BYTES..i * ENTRY_BYTES + 8]);
        u64::from_be_bytes(bytes)
    };
    let partition = |bound: u64| {
        let (mut low, mut high) = (0, count);
        while low < high {
            let middle = (low + high) / 2;
            if first_of(middle) <= bound {
                low = middle + 1
            } else {
                high = middle
            }
        }
        low
    };
    let from = partition(start).saturating_sub(1);
    let to = partition(end.saturating_sub(1));
    Ok((from..to)
        .map(|i| {
            let mut id = [0u8; 32];
            id.copy_from_slice(&page[i * ENTRY_BYTES + 8..(i + 1) * ENTRY_BYTES]);
            RecordId(id)
        })
        .collect())
}

/// Appends the chunks of `record` whose ids are in `start..end`.
fn push_chunks(record: &Record, start: u64, end: u64, out: &mut Vec<Chunk>) -> Result<()> {
    let first = record.first_chunk_id;
    let count = record.chunk_ranges.len() as u64;
    if count == 0 || first >= end || first + count <= start {
        return Ok(());
    }
    let corrupt = |reason: &str| StorageError::Corruption {
        cf: CF_RECORDS,
        key: hex::encode(record.record_id.0),
        reason: reason.into(),
    };
    let text = record
        .text()?
        .ok_or_else(|| corrupt("has chunks but no text"))?;
    for (ordinal, &(from, to)) in record.chunk_ranges.iter().enumerate() {
        let chunk_id = first + ordinal as u64;
        if chunk_id < start || chunk_id >= end {
            continue;
        }
        let slice = text
            .get(from as usize..to as usize)
            .ok_or_else(|| corrupt("chunk range outside its text"))?;
        out.push(Chunk {
            chunk_id,
            record_id: record.record_id,
            datanet_id: record.datanet_id,
            ordinal: ordinal as u32,
            start_byte: from,
            end_byte: to,
            text: slice.to_string(),
        });
    }
    Ok(())
}
