//! Record scans that read values in place ([`RecordView`]), for the SQL layer's tables. Three
//! ways in, and the caller picks by how much of the database it wants:
//!
//! - [`Store::visit_all_records`]: the `records` column family in key (record id) order, read
//!   sequentially, each block decompressed once. Ids are keccak hashes, so `parts` equal slices
//!   of the id space hold about equal numbers of records and scan in parallel. Every Datanet's
//!   records pass by: the caller filters by `datanet_id`. Best when the wanted Datanets hold
//!   most of the records.
//! - [`Store::visit_datanet_records`]: one Datanet in ingest order through its batch pages and
//!   batched point lookups (random reads); `parts` callers take every `parts`-th page.
//! - [`Store::visit_records_by_id`]: batched point lookups of given ids.
//!
//! A scan fills the block cache only when the family it reads fits in the cache, its SST files
//! taken at twice their compressed size: then repeated analytic queries read decompressed
//! blocks from memory, while a scan of a larger family does not evict what point lookups keep
//! warm.

use rocksdb::{DBPinnableSlice, Direction, IteratorMode, ReadOptions};

use super::Store;
use super::pages::page_entries;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{DatanetId, RecordId};
use crate::view::RecordView;

/// Sequential read-ahead of a full scan.
const READAHEAD_BYTES: usize = 2 << 20;

/// The RocksDB property giving a column family's live SST bytes (compressed, on disk).
const LIVE_SST_BYTES: &str = "rocksdb.live-sst-files-size";

/// The record-id bounds of slice `part` of `parts`: ids are split by their first two bytes.
fn id_bounds(part: usize, parts: usize) -> (Option<[u8; 2]>, Option<[u8; 2]>) {
    let edge = |i: usize| -> Option<[u8; 2]> {
        let value = i * 65_536 / parts;
        (value > 0 && value < 65_536).then(|| (value as u16).to_be_bytes())
    };
    (edge(part), edge(part + 1))
}

impl Store {
    /// Column family `cf`'s live SST bytes (compressed, on disk).
    pub(crate) fn live_sst_bytes(&self, cf: &'static str) -> Result<Option<u64>> {
        self.db
            .property_int_value_cf(self.cf(cf)?, LIVE_SST_BYTES)
            .map_err(|e| self.rocks(e))
    }

    /// Read options for a scan of column family `cf` (see the module doc for the cache rule).
    fn scan_options(&self, cf: &'static str) -> Result<ReadOptions> {
        let live = self.live_sst_bytes(cf)?.unwrap_or(u64::MAX);
        let fits = live.saturating_mul(2) <= self.options.block_cache_bytes as u64;
        let mut read = ReadOptions::default();
        read.fill_cache(fits);
        Ok(read)
    }

    /// Record versions stored, over every Datanet (from their counters).
    pub fn total_records(&self) -> Result<u64> {
        let mut total = 0;
        for datanet in self.datanets()? {
            total += self.stats(datanet.id)?.records;
        }
        Ok(total)
    }

    /// Visits, in id order, every stored record (of any Datanet) whose id is in slice `part` of
    /// `parts` equal slices of the id space; stops when `visit` returns false.
    pub fn visit_all_records<E: From<StorageError>>(
        &self,
        part: usize,
        parts: usize,
        visit: &mut dyn FnMut(RecordView<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        if parts == 0 || part >= parts {
            return Err(StorageError::Internal(format!("no scan part {part} of {parts}")).into());
        }
        let (lower, upper) = id_bounds(part, parts);
        let mut read = self.scan_options(CF_RECORDS)?;
        read.set_readahead_size(READAHEAD_BYTES);
        if let Some(lower) = lower {
            read.set_iterate_lower_bound(lower.to_vec());
        }
        if let Some(upper) = upper {
            read.set_iterate_upper_bound(upper.to_vec());
        }
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(CF_RECORDS)?, read);
        match lower {
            Some(lower) => iter.seek(lower),
            None => iter.seek_to_first(),
        }
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !visit(RecordView::decode(CF_RECORDS, key, value)?)? {
                return Ok(());
            }
            iter.next();
        }
        iter.status().map_err(|e| self.rocks(e))?;
        Ok(())
    }

    /// Visits Datanet `datanet`'s records in ingest order, reading its batch pages `part`,
    /// `part + parts`, ... (so `parts` callers share the work); stops when `visit` returns
    /// false.
    pub fn visit_datanet_records<E: From<StorageError>>(
        &self,
        datanet: DatanetId,
        part: usize,
        parts: usize,
        visit: &mut dyn FnMut(RecordView<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        if parts == 0 || part >= parts {
            return Err(StorageError::Internal(format!("no scan part {part} of {parts}")).into());
        }
        let mut read = ReadOptions::default();
        read.fill_cache(false);
        if let Some(next) = datanet.checked_add(1) {
            read.set_iterate_upper_bound(datanet_key(next).to_vec());
        }
        let record_reads = self.scan_options(CF_RECORDS)?;
        let start = datanet_key(datanet);
        let pages = self.db.iterator_cf_opt(
            self.cf(CF_BATCH_PAGES)?,
            read,
            IteratorMode::From(&start, Direction::Forward),
        );
        for (index, page) in pages.enumerate() {
            if index % parts != part {
                continue;
            }
            let (key, value) = page.map_err(|e| self.rocks(e))?;
            let ids: Vec<RecordId> = page_entries(&key, &value)?
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            if !self.visit_found(&ids, true, &record_reads, visit)? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Visits the stored records among `ids`, in that order (ids not stored are skipped);
    /// stops when `visit` returns false.
    pub fn visit_records_by_id<E: From<StorageError>>(
        &self,
        ids: &[RecordId],
        visit: &mut dyn FnMut(RecordView<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        let read = self.scan_options(CF_RECORDS)?;
        self.visit_found(ids, false, &read, visit).map(|_| ())
    }

    /// Batched lookups of `ids` with `read`, each found one visited; a missing one is
    /// corruption when `listed` (the store's own pages named it). False when `visit` asked to
    /// stop.
    fn visit_found<E: From<StorageError>>(
        &self,
        ids: &[RecordId],
        listed: bool,
        read: &ReadOptions,
        visit: &mut dyn FnMut(RecordView<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<bool, E> {
        let cf = self.cf(CF_RECORDS)?;
        let found: Vec<std::result::Result<Option<DBPinnableSlice<'_>>, rocksdb::Error>> = self
            .db
            .batched_multi_get_cf_opt(cf, ids.iter().map(|id| &id.0), false, read);
        for (id, found) in ids.iter().zip(found) {
            match found.map_err(|e| self.rocks(e))? {
                Some(bytes) if !visit(RecordView::decode(CF_RECORDS, &id.0, &bytes)?)? => {
                    return Ok(false);
                }
                Some(_) => {}
                None if listed => {
                    return Err(StorageError::Corruption {
                        cf: CF_RECORDS,
                        key: hex::encode(id.0),
                        reason: "listed in a batch page but missing".into(),
                    }
                    .into());
                }
                None => {}
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::id_bounds;

    #[test]
    fn id_slices_tile_the_id_space() {
        assert_eq!(id_bounds(0, 1), (None, None));
        assert_eq!(id_bounds(0, 2), (None, Some([0x80, 0])));
        assert_eq!(id_bounds(1, 2), (Some([0x80, 0]), None));
        for parts in 1..9 {
            for part in 1..parts {
                assert_eq!(id_bounds(part - 1, parts).1, id_bounds(part, parts).0);
                assert!(id_bounds(part, parts).0.is_some());
            }
        }
    }
}
