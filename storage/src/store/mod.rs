//! The `Store`: one RocksDB database holding every column family of `keys`.
//!
//! Writers are serialised by one mutex that also holds the counters (sequence, next chunk id,
//! next Datanet id). A mutation builds one `WriteBatch` with its data, its log entry and the
//! advanced counters, writes it, and only then advances the in-memory counters: if the write
//! fails, memory and disk still agree.

mod access;
mod accounts;
mod by_contributor;
mod commit;
mod encode;
mod epochs;
mod jobs;
mod ledger;
mod pages;
mod prices;
mod read;
mod scan;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    WriteBatch, WriteOptions,
};

use crate::codec::{decode_u64, encode};
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{
    Address, Datanet, DatanetId, DatanetStats, Grant, LogEntry, NearDuplicatePolicy,
};

pub use commit::{PreparedBatch, Uncommitted};
pub use encode::BatchStart;
pub use ledger::NewAnswer;
pub use read::RecordScan;

/// How a `Store` is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync the WAL on every commit, so an acknowledged batch survives power loss, not just a
    /// process crash. On by default.
    pub sync_writes: bool,
    /// Create the database when the directory holds none.
    pub create_if_missing: bool,
    /// Capacity of the one LRU cache of decompressed blocks that every column family shares.
    /// It takes memory only as blocks are read, up to this size. Point reads fill it; a scan
    /// fills it only when the family it reads fits in it (see `scan`).
    pub block_cache_bytes: usize,
}

/// The default block cache: 1 GiB, so the hot part of a database of a few million records
/// stays decompressed in memory.
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 1 << 30;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync_writes: true,
            create_if_missing: true,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
        }
    }
}

pub(crate) struct Counters {
    pub(crate) sequence: u64,
    pub(crate) next_chunk_id: u64,
    pub(crate) next_datanet_id: u32,
}

/// provdb's durable state. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    db: rocksdb::DB,
    block_cache: Cache,
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Counters>,
    ledger: Mutex<ledger::LedgerHead>,
    epoch_closing: Mutex<()>,
    jobs_writer: Mutex<()>,
}

fn rocks_options(cache: &Cache) -> Options {
    table_options(cache, 4 << 10, DBCompressionType::Zstd)
}

/// Block size of the `records` family: 64 KiB. A full scan pays per block (a cache lookup,
/// starting the block's iterator), and at 16 KiB (about 30 records) that was 7 % of a GROUP BY
/// over every record; at 64 KiB the scan is 7 % faster and LZ4 packs 5 % tighter, while a point
/// read that misses the cache decompresses 64 KiB (tens of microseconds) instead of 16.
const RECORDS_BLOCK_BYTES: usize = 64 << 10;

/// The `records` column family's options. SQL scans read it sequentially, where 4 KiB Zstd
/// blocks made decompression a third of a full scan (`provdb bench sql`): larger blocks
/// ([`RECORDS_BLOCK_BYTES`]), LZ4 at every level, decompress about twice as fast for 7 % more
/// disk than Zstd at the bottom. (Each SST records its own settings, so files written before
/// still read.) Every ingest looks up each new id to refuse duplicates, nearly always a miss:
/// a Bloom filter over the memtable's keys answers most misses without searching its skiplist.
fn records_options(cache: &Cache) -> Options {
    let mut options = table_options(cache, RECORDS_BLOCK_BYTES, DBCompressionType::Lz4);
    options.set_memtable_prefix_bloom_ratio(0.01);
    options.set_memtable_whole_key_filtering(true);
    options
}

fn table_options(cache: &Cache, block_bytes: usize, bottommost: DBCompressionType) -> Options {
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_bottommost_compression_type(bottommost);
    options.set_max_background_jobs(2);
    options.set_write_buffer_size(64 << 20);
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_size(block_bytes);
    table.set_block_cache(cache);
    options.set_block_based_table_factory(&table);
    options
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut db_options = rocks_options(&cache);
        db_options.create_if_missing(options.create_if_missing);
        db_options.create_missing_column_families(true);
        let descriptors = ALL_CFS.iter().map(|&name| match name {
            CF_RECORDS => ColumnFamilyDescriptor::new(name, records_options(&cache)),
            _ => ColumnFamilyDescriptor::new(name, rocks_options(&cache)),
        });
        let db = rocksdb::DB::open_cf_descriptors(&db_options, &path, descriptors).map_err(
            |source| StorageError::Rocks {
                path: path.clone(),
                source,
            },
        )?;
        let mut store = Self {
            db,
            block_cache: cache,
            path,
            options,
            writer: Mutex::new(Counters {
                sequence: 0,
                next_chunk_id: 0,
                next_datanet_id: 0,
            }),
            ledger: Mutex::new(ledger::LedgerHead::default()),
            epoch_closing: Mutex::new(()),
            jobs_writer: Mutex::new(()),
        };
        let counters = store.load_counters()?;
        *store
            .writer
            .get_mut()
            .map_err(|_| StorageError::Internal("poisoned".into()))? = counters;
        let head = store.load_ledger_head()?;
        *store
            .ledger
            .get_mut()
            .map_err(|_| StorageError::Internal("poisoned".into()))? = head;
        Ok(store)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last committed sequence number (0 for an empty database).
    pub fn sequence(&self) -> Result<u64> {
        Ok(self.lock()?.sequence)
    }

    /// Bytes the block cache holds now.
    pub fn block_cache_usage(&self) -> usize {
        self.block_cache.get_usage()
    }

    /// Flushes the memtables and waits until RocksDB's background compactions are done, so
    /// that what is timed next does not share the CPU with them (benchmarks, after a load).
    pub fn wait_for_compactions(&self) -> Result<()> {
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_flush(true);
        self.db
            .wait_for_compact(&options)
            .map_err(|e| self.rocks(e))
    }

    /// The raw RocksDB handle, for tests that damage data on purpose and for benchmarks.
    #[doc(hidden)]
    pub fn raw_db(&self) -> &rocksdb::DB {
        &self.db
    }

    fn load_counters(&self) -> Result<Counters> {
        let meta = self.cf(CF_META)?;
        let read = |key: &[u8]| -> Result<Option<u64>> {
            match self.db.get_cf(meta, key).map_err(|e| self.rocks(e))? {
                Some(bytes) => decode_u64(CF_META, key, &bytes).map(Some),
                None => Ok(None),
            }
        };
        match read(META_FORMAT)? {
            Some(FORMAT_VERSION) => {}
            Some(1) => {
                // Format 2 only added the contributor index: build it, then say so.
                self.build_contributor_index()?;
                self.db
                    .put_cf(meta, META_FORMAT, u64_value(FORMAT_VERSION))
                    .map_err(|e| self.rocks(e))?;
            }
            Some(other) => {
                return Err(StorageError::Corruption {
                    cf: CF_META,
                    key: "format".into(),
                    reason: format!("on-disk format {other}, this provdb reads {FORMAT_VERSION}"),
                });
            }
            None => {
                self.db
                    .put_cf(meta, META_FORMAT, u64_value(FORMAT_VERSION))
                    .map_err(|e| self.rocks(e))?;
            }
        }
        let next_datanet = read(META_NEXT_DATANET)?.unwrap_or(0);
        Ok(Counters {
            sequence: read(META_SEQUENCE)?.unwrap_or(0),
            next_chunk_id: read(META_NEXT_CHUNK)?.unwrap_or(0),
            next_datanet_id: u32::try_from(next_datanet).map_err(|_| StorageError::Corruption {
                cf: CF_META,
                key: "next_datanet_id".into(),
                reason: format!("{next_datanet} does not fit u32"),
            })?,
        })
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::Internal(format!("column family '{name}' missing")))
    }

    pub(crate) fn rocks(&self, source: rocksdb::Error) -> StorageError {
        StorageError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Counters>> {
        self.writer
            .lock()
            .map_err(|_| StorageError::Internal("writer mutex poisoned".into()))
    }

    /// Writes `batch` (which must already hold its data) together with the log entry and the
    /// advanced sequence. The single commit point of every mutation.
    pub(crate) fn commit(
        &self,
        counters: &mut Counters,
        mut batch: WriteBatch,
        entry: &LogEntry,
        next_chunk_id: u64,
        next_datanet_id: u32,
    ) -> Result<u64> {
        let sequence = counters.sequence + 1;
        let meta = self.cf(CF_META)?;
        batch.put_cf(self.cf(CF_LOG)?, u64_value(sequence), encode(entry)?);
        batch.put_cf(meta, META_SEQUENCE, u64_value(sequence));
        batch.put_cf(meta, META_NEXT_CHUNK, u64_value(next_chunk_id));
        batch.put_cf(
            meta,
            META_NEXT_DATANET,
            u64_value(u64::from(next_datanet_id)),
        );
        let mut write_options = WriteOptions::default();
        write_options.set_sync(self.options.sync_writes);
        self.db
            .write_opt(batch, &write_options)
            .map_err(|e| self.rocks(e))?;
        counters.sequence = sequence;
        counters.next_chunk_id = next_chunk_id;
        counters.next_datanet_id = next_datanet_id;
        Ok(sequence)
    }

    /// Creates a Datanet; its `id` is assigned here (the given one is ignored).
    pub fn create_datanet(&self, mut datanet: Datanet) -> Result<Datanet> {
        validate_datanet_name(&datanet.name)?;
        let mut counters = self.lock()?;
        let cf = self.cf(CF_DATANETS)?;
        if self
            .db
            .get_cf(cf, datanet.name.as_bytes())
            .map_err(|e| self.rocks(e))?
            .is_some()
        {
            return Err(StorageError::DatanetExists(datanet.name));
        }
        datanet.id = counters.next_datanet_id;
        let next_datanet = datanet
            .id
            .checked_add(1)
            .ok_or_else(|| StorageError::Invalid("too many datanets".into()))?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            cf,
            datanet.name.as_bytes(),
            crate::codec::encode_datanet(&datanet)?,
        );
        let stats = DatanetStats {
            last_sequence: counters.sequence + 1,
            ..DatanetStats::default()
        };
        batch.put_cf(self.cf(CF_STATS)?, datanet_key(datanet.id), encode(&stats)?);
        let entry = LogEntry::DatanetCreated {
            datanet_id: datanet.id,
        };
        let next_chunk = counters.next_chunk_id;
        self.commit(&mut counters, batch, &entry, next_chunk, next_datanet)?;
        Ok(datanet)
    }

    /// Gives `grantee` read access to a Datanet.
    pub fn grant(&self, grant: &Grant) -> Result<u64> {
        self.change_grant(grant.datanet_id, &grant.grantee, Some(grant))
    }

    /// Takes a read grant away (a no-op change is still logged, so it is idempotent).
    pub fn revoke(&self, datanet_id: u32, grantee: &Address) -> Result<u64> {
        self.change_grant(datanet_id, grantee, None)
    }

    /// Sets Datanet `datanet_id`'s near-duplicate policy (logged, with who set it).
    pub fn set_near_duplicate_policy(
        &self,
        datanet_id: DatanetId,
        policy: NearDuplicatePolicy,
        set_by: Option<Address>,
    ) -> Result<u64> {
        if !(1..=10_000).contains(&policy.threshold_bps) {
            return Err(StorageError::Invalid(format!(
                "a near-duplicate threshold of {} basis points is outside 1..=10000",
                policy.threshold_bps
            )));
        }
        let mut datanet = self.datanet_by_id(datanet_id)?;
        let mut counters = self.lock()?;
        datanet.near_duplicates = policy;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_DATANETS)?,
            datanet.name.as_bytes(),
            crate::codec::encode_datanet(&datanet)?,
        );
        let entry = LogEntry::NearDuplicatePolicySet {
            datanet_id,
            action: policy.action.as_str().to_string(),
            threshold_bps: policy.threshold_bps,
            across_datanets: policy.across_datanets,
            set_by,
        };
        let (next_chunk, next_datanet) = (counters.next_chunk_id, counters.next_datanet_id);
        self.commit(&mut counters, batch, &entry, next_chunk, next_datanet)
    }

    fn change_grant(
        &self,
        datanet_id: u32,
        grantee: &Address,
        grant: Option<&Grant>,
    ) -> Result<u64> {
        self.datanet_by_id(datanet_id)?;
        let mut counters = self.lock()?;
        let mut batch = WriteBatch::default();
        let key = datanet_address_key(datanet_id, grantee);
        let cf = self.cf(CF_GRANTS)?;
        match grant {
            Some(grant) => batch.put_cf(cf, key, encode(grant)?),
            None => batch.delete_cf(cf, key),
        }
        let entry = LogEntry::GrantChanged {
            datanet_id,
            grantee: *grantee,
            granted: grant.is_some(),
        };
        let (next_chunk, next_datanet) = (counters.next_chunk_id, counters.next_datanet_id);
        self.commit(&mut counters, batch, &entry, next_chunk, next_datanet)
    }
}

/// Datanet names become SQL table names: a letter, then letters, digits, `_` or `-`, at most 64.
fn validate_datanet_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= 64 {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "invalid datanet name '{name}': a letter, then letters, digits, '_' or '-', at most 64"
        )))
    }
}

#[cfg(test)]
mod accounts_tests;
#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod versions_tests;
