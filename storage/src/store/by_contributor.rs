//! The `contributor_records` index: datanet ‖ contributor ‖ created_at ‖ record id → nothing,
//! so that "this contributor's records (of this period)" reads a key range instead of every
//! record. 64 bytes of key per record version.
//!
//! Invariants: a record's Datanet, contributor, creation time and id never change (only its
//! status does), so its entry is written once, in the `WriteBatch` that stores the record
//! (`commit_versions`), and never updated or deleted; the index holds exactly one entry per
//! stored record version. Format 2 added it: a format-1 database gets it built on open
//! ([`Store::build_contributor_index`]) before format 2 is recorded, and rebuilding is
//! idempotent (same keys), so a crash during the upgrade only repeats it.

use rocksdb::{ReadOptions, WriteBatch};

use super::Store;
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Address, DatanetId, RecordId};
use crate::view::RecordView;

/// Ids looked up together while visiting an index range (bounds the memory of one visit).
const LOOKUP_IDS: usize = 4096;
/// Entries per write while building the index.
const BUILD_BATCH_ENTRIES: usize = 65_536;

impl Store {
    /// Visits the records of Datanet `datanet` by `contributor` created within `from..=to`
    /// (a `None` bound is open), in creation-time order; stops when `visit` returns false.
    pub fn visit_contributor_records<E: From<StorageError>>(
        &self,
        datanet: DatanetId,
        contributor: &Address,
        from: Option<i64>,
        to: Option<i64>,
        visit: &mut dyn FnMut(RecordView<'_>) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        let prefix = datanet_address_key(datanet, contributor);
        let mut start = prefix.to_vec();
        start.extend_from_slice(&sortable_time(from.unwrap_or(i64::MIN)));
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(start.clone());
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(CF_CONTRIBUTOR_RECORDS)?, read);
        iter.seek(&start);
        let last = to.map(sortable_time);
        let mut ids = Vec::with_capacity(LOOKUP_IDS);
        loop {
            let mut in_range = false;
            if let Some(key) = iter.key()
                && key.len() == 64
                && key[..24] == prefix
                && last.is_none_or(|last| key[24..32] <= last[..])
            {
                let mut id = [0u8; 32];
                id.copy_from_slice(&key[32..]);
                ids.push(RecordId(id));
                in_range = true;
            }
            if !in_range || ids.len() == LOOKUP_IDS {
                let mut stopped = false;
                self.visit_records_by_id(&ids, &mut |view| {
                    let go_on = visit(view)?;
                    stopped = !go_on;
                    Ok::<bool, E>(go_on)
                })?;
                ids.clear();
                if stopped || !in_range {
                    break;
                }
            }
            iter.next();
        }
        iter.status().map_err(|e| self.rocks(e))?;
        Ok(())
    }

    /// Writes the index entry of every stored record (format 1 to 2); returns how many.
    pub(crate) fn build_contributor_index(&self) -> Result<u64> {
        let cf = self.cf(CF_CONTRIBUTOR_RECORDS)?;
        let mut batch = WriteBatch::default();
        let mut written = 0u64;
        self.visit_all_records(0, 1, &mut |record| {
            let key = contributor_record_key(
                record.datanet_id,
                &record.contributor,
                record.created_at_ms,
                &record.record_id,
            );
            batch.put_cf(cf, key, []);
            written += 1;
            if batch.len() >= BUILD_BATCH_ENTRIES {
                self.db
                    .write(std::mem::take(&mut batch))
                    .map_err(|e| self.rocks(e))?;
            }
            Ok::<bool, StorageError>(true)
        })?;
        self.db.write(batch).map_err(|e| self.rocks(e))?;
        Ok(written)
    }

    /// Ids of the index's entries, for tests: (datanet, contributor, created_at, id).
    #[cfg(test)]
    pub(crate) fn contributor_index_entries(
        &self,
    ) -> Result<Vec<(DatanetId, Address, i64, RecordId)>> {
        let cf = self.cf(CF_CONTRIBUTOR_RECORDS)?;
        self.db
            .iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|item| {
                let (key, _) = item.map_err(|e| self.rocks(e))?;
                let mut datanet = [0u8; 4];
                datanet.copy_from_slice(&key[..4]);
                let mut address = [0u8; 20];
                address.copy_from_slice(&key[4..24]);
                let mut time = [0u8; 8];
                time.copy_from_slice(&key[24..32]);
                let mut id = [0u8; 32];
                id.copy_from_slice(&key[32..64]);
                Ok((
                    u32::from_be_bytes(datanet),
                    Address(address),
                    (u64::from_be_bytes(time) ^ (1 << 63)) as i64,
                    RecordId(id),
                ))
            })
            .collect()
    }
}
