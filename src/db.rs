//! `Db`: the embedded database handle. Owns the data directory layout (`DIR/storage` holds
//! RocksDB, `DIR/index/NAME/` each Datanet's derived search index) and the Datanet-level API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use provdb_storage::{
    Committer, Datanet, DatanetStats, Record, RecordId, Status, Store, StoreOptions, Visibility,
};
use serde::Serialize;

use crate::answer::model::AnswerModel;
use crate::error::{Error, Result};
use crate::search::registry::Indexes;

/// A Datanet with its counters.
#[derive(Clone, Debug, Serialize)]
pub struct DatanetInfo {
    /// Name.
    pub name: String,
    /// Numeric id.
    pub id: u32,
    /// Description.
    pub description: String,
    /// Default license.
    pub license: String,
    /// Text column.
    pub text_column: String,
    /// Whether signatures are required.
    pub require_signatures: bool,
    /// The signature schemes it accepts: `eip712`, and `eip191` for Datanets created before
    /// EIP-712.
    pub signature_schemes: Vec<&'static str>,
    /// The chain id of its EIP-712 domain.
    pub chain_id: u64,
    /// "public" or "private".
    pub visibility: &'static str,
    /// Owner address.
    pub owner: Option<String>,
    /// Its counters (flattened into the JSON).
    #[serde(flatten)]
    pub stats: DatanetStats,
}

impl DatanetInfo {
    fn new(datanet: &Datanet, stats: DatanetStats) -> Self {
        Self {
            name: datanet.name.clone(),
            id: datanet.id,
            description: datanet.description.clone(),
            license: datanet.license.clone(),
            text_column: datanet.text_column.clone(),
            require_signatures: datanet.require_signatures,
            signature_schemes: if datanet.signatures.accepts_eip191 {
                vec!["eip712", "eip191"]
            } else {
                vec!["eip712"]
            },
            chain_id: datanet.signatures.chain_id,
            visibility: match datanet.visibility {
                Visibility::Public => "public",
                Visibility::Private => "private",
            },
            owner: datanet.owner.map(|o| o.to_string()),
            stats,
        }
    }
}

/// An open provdb database. Clone it freely: clones share one store.
#[derive(Clone)]
pub struct Db {
    pub(crate) store: Arc<Store>,
    dir: PathBuf,
    pub(crate) indexes: Arc<Indexes>,
    pub(crate) embedder: Option<Arc<dyn provdb_index::Embed>>,
    pub(crate) generator: Option<AnswerModel>,
    /// The largest fee one answer may carry (`Db::with_max_fee_wei`).
    pub(crate) max_fee_wei: u128,
    /// What answers in flight hold of their callers' balances.
    pub(crate) holds: Arc<crate::answer::Holds>,
    /// The local operator's address, read from its key file once (`Db::operator`).
    pub(crate) operator: Arc<std::sync::OnceLock<provdb_storage::Address>>,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it): the one clock of every
/// timestamp the database writes.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Creates the data directory and an empty database (opening it if one is there).
    pub fn init(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        fs_err::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens the database in `dir`, which `init` must have created.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.join("storage").join("CURRENT").exists() {
            return Err(Error::NotInitialized(dir.to_path_buf()));
        }
        Self::open_with(
            dir,
            StoreOptions {
                create_if_missing: false,
                ..StoreOptions::default()
            },
        )
    }

    /// Opens with explicit storage options (benchmarks turn `sync_writes` off to compare).
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let store = Store::open(dir.join("storage"), options)?;
        Ok(Self {
            store: Arc::new(store),
            dir,
            indexes: Arc::default(),
            embedder: None,
            generator: None,
            max_fee_wei: crate::answer::DEFAULT_MAX_FEE_WEI,
            holds: Arc::default(),
            operator: Arc::default(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage layer, for the crates above it.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Creates a Datanet (`Datanet::new(name)` gives the defaults); its id and creation time
    /// are assigned here. A Datanet always has an owner, its treasury: the one named, else
    /// the local operator ([`Db::operator`]).
    pub fn create_datanet(&self, mut datanet: Datanet) -> Result<DatanetInfo> {
        if datanet.owner.is_none() {
            datanet.owner = Some(self.operator()?);
        }
        if let Some(schema) = &datanet.schema
            && !schema.iter().any(|c| c.name == datanet.text_column)
        {
            return Err(Error::Invalid(format!(
                "the schema has no column '{}' to use as the text column",
                datanet.text_column
            )));
        }
        let chunking = datanet.chunking;
        if chunking.size_bytes < 16 || chunking.overlap_bytes >= chunking.size_bytes / 2 {
            return Err(Error::Invalid(
                "chunk size must be >= 16 bytes and overlap < half of it".into(),
            ));
        }
        if !matches!(datanet.initial_status, Status::Approved | Status::Pending) {
            return Err(Error::Invalid(
                "new records start approved or pending".into(),
            ));
        }
        datanet.created_at_ms = now_ms();
        let datanet = self.store.create_datanet(datanet)?;
        self.datanet_info(&datanet.name)
    }

    /// Every Datanet with its counters.
    pub fn datanets(&self) -> Result<Vec<DatanetInfo>> {
        self.store
            .datanets()?
            .iter()
            .map(|d| Ok(DatanetInfo::new(d, self.store.stats(d.id)?)))
            .collect()
    }

    /// One Datanet with its counters.
    pub fn datanet_info(&self, name: &str) -> Result<DatanetInfo> {
        let datanet = self.store.datanet(name)?;
        Ok(DatanetInfo::new(&datanet, self.store.stats(datanet.id)?))
    }

    /// Up to `limit` record versions of a Datanet, in ingest order.
    pub fn records(&self, name: &str, limit: usize) -> Result<Vec<Record>> {
        let datanet = self.store.datanet(name)?;
        Ok(self
            .store
            .scan_records(datanet.id)?
            .take(limit)
            .collect::<Result<_, _>>()?)
    }

    /// One record by id.
    pub fn record(&self, id: &RecordId) -> Result<Option<Record>> {
        Ok(self.store.record(id)?)
    }

    /// Sets a record's curation status (approve, reject, slash).
    pub fn set_status(&self, id: &RecordId, status: Status) -> Result<u64> {
        Ok(self.store.set_status(id, status)?)
    }

    /// Sets a record's curation status and/or quality score (0..=1).
    pub fn set_curation(
        &self,
        id: &RecordId,
        status: Option<Status>,
        quality: Option<f32>,
    ) -> Result<u64> {
        Ok(self.store.set_curation(id, status, quality)?)
    }

    /// The Datanet a record belongs to.
    pub fn datanet_of(&self, record: &Record) -> Result<Datanet> {
        Ok(self.store.datanet_by_id(record.datanet_id)?)
    }

    /// Removes a record: stores a tombstone version, keeping its history. `by` must be the
    /// record's contributor or curate its Datanet (see `Store::version_act`).
    pub fn tombstone(&self, id: &RecordId, by: Committer) -> Result<u64> {
        Ok(self.store.tombstone(id, by, now_ms())?.sequence)
    }
}
