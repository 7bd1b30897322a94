//! Search over a Datanet: the `Db` side of provdb-index. Owns the registry of open indexes
//! (`registry.rs`: one per Datanet, under `DIR/index/NAME/`), the adapter from the sentence
//! embedder to the index's `Embed` trait (`embedder.rs`), read-access checks, attaching chunk
//! text to hits, and the same search as the query crate's `Searcher` for SQL's search table
//! functions (`searcher.rs`).
//!
//! Invariant: a search first catches its index up with storage, so a commit (new records, a
//! status change, a tombstone, a new version) is reflected in the very next search.

mod embedder;
pub(crate) mod registry;
pub(crate) mod searcher;

use std::path::PathBuf;
use std::sync::Arc;

use provdb_index::{
    CatchUp, DatanetIndex, Embed, IndexConfig, IndexError, IndexHit, Mode, Progress,
};
use provdb_query::Caller;
use provdb_storage::{Address, Datanet, RecordId};
use serde::{Serialize, Serializer};

pub use embedder::SentenceEmbedder;
pub use provdb_index::{
    Filters, Fusion, HnswParams, MAX_K, RetrieverScore, SearchOptions, Stage, Weights,
};

use crate::db::Db;
use crate::error::{Error, Result};

fn as_display<T: std::fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    /// The chunk.
    pub chunk_id: u64,
    /// The record holding it.
    #[serde(serialize_with = "as_display")]
    pub record_id: RecordId,
    /// Who contributed the record (and is paid when it is cited).
    #[serde(serialize_with = "as_display")]
    pub contributor: Address,
    /// Final score (fused in hybrid mode).
    pub score: f32,
    /// BM25's score and rank, when BM25 found the chunk.
    pub bm25: Option<RetrieverScore>,
    /// The vector retriever's score and rank, when it found the chunk.
    pub vector: Option<RetrieverScore>,
    /// The chunk's text.
    pub text: String,
}

impl Db {
    /// Uses `embedder` to index and query vectors (without one, only BM25 works).
    pub fn with_embedder(mut self, embedder: Arc<dyn Embed>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// The embedder in use, if any.
    pub fn embedder(&self) -> Option<&Arc<dyn Embed>> {
        self.embedder.as_ref()
    }

    fn index_dir(&self, datanet: &Datanet) -> PathBuf {
        self.dir().join("index").join(&datanet.name)
    }

    /// The open index of a Datanet, opening it on first use.
    pub fn index(&self, name: &str) -> Result<Arc<DatanetIndex>> {
        let datanet = self.store.datanet(name)?;
        self.indexes.get_or_open(name, || {
            Ok(DatanetIndex::open(&self.index_dir(&datanet), datanet.id)?)
        })
    }

    /// How many storage sequence numbers the least caught-up open index is behind (0 when
    /// none is open). Indexes catch up on the next search; this is what that search will do.
    pub fn index_lag(&self) -> Result<u64> {
        let open = self.indexes.all()?;
        let head = self.store.sequence()?;
        let mut lag = 0;
        for index in open {
            lag = lag.max(head.saturating_sub(index.sequence()?));
        }
        Ok(lag)
    }

    /// Brings a Datanet's index up to date with storage: BM25 and filters always, vectors when
    /// the database has an embedder. `progress` sees (stage, chunks done, total).
    pub fn catch_up_index(&self, name: &str, progress: Progress<'_>) -> Result<CatchUp> {
        let index = self.index(name)?;
        Ok(index.catch_up(&self.store, self.embedder.as_deref(), progress)?)
    }

    /// Stores a Datanet's index parameters; the index reopens with them (the graph is rebuilt
    /// from the stored vectors, nothing is re-embedded).
    pub fn configure_index(&self, name: &str, config: &IndexConfig) -> Result<()> {
        let datanet = self.store.datanet(name)?;
        DatanetIndex::save_config(&self.index_dir(&datanet), config)?;
        self.indexes.forget(name)
    }

    /// Deletes a Datanet's index files and rebuilds them from storage.
    pub fn rebuild_index(&self, name: &str, progress: Progress<'_>) -> Result<CatchUp> {
        let datanet = self.store.datanet(name)?;
        self.indexes.forget(name)?;
        let dir = self.index_dir(&datanet);
        let config = IndexConfig::load(&dir.join("config.bin")).unwrap_or_default();
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(Error::io(&dir))?;
        }
        DatanetIndex::save_config(&dir, &config)?;
        self.catch_up_index(name, progress)
    }

    /// Searches Datanet `name` for `text` as an anonymous caller. Only chunks of live,
    /// approved records are returned unless the filters say otherwise.
    pub fn search(
        &self,
        name: &str,
        text: &str,
        options: &SearchOptions,
    ) -> Result<Vec<SearchHit>> {
        self.search_as(name, text, options, Caller::anonymous())
    }

    /// `search` on behalf of `caller`: a private Datanet it may not read is refused.
    pub fn search_as(
        &self,
        name: &str,
        text: &str,
        options: &SearchOptions,
        caller: Caller,
    ) -> Result<Vec<SearchHit>> {
        let hits = self.search_hits(name, text, options, caller)?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            let chunk = self.store.chunk(hit.chunk_id)?.ok_or_else(|| {
                Error::Internal(format!("indexed chunk {} is not stored", hit.chunk_id))
            })?;
            out.push(SearchHit {
                chunk_id: hit.chunk_id,
                record_id: hit.record_id,
                contributor: hit.contributor,
                score: hit.score,
                bm25: hit.bm25,
                vector: hit.vector,
                text: chunk.text,
            });
        }
        Ok(out)
    }

    /// The index's hits (without chunk text) of `text` in Datanet `name` for `caller`.
    pub fn search_hits(
        &self,
        name: &str,
        text: &str,
        options: &SearchOptions,
        caller: Caller,
    ) -> Result<Vec<IndexHit>> {
        options.validate()?;
        let datanet = self.store.datanet(name)?;
        if !caller.may_read(&self.store, &datanet)? {
            return Err(Error::Invalid(format!(
                "datanet '{name}' is private: only its owner and grantees may search it"
            )));
        }
        let needs_vectors = options.mode != Mode::Bm25;
        let embedder = if needs_vectors {
            Some(self.embedder.as_deref().ok_or_else(|| {
                IndexError::NoEmbedder(
                    "no embedder model is loaded (run scripts/fetch-models.sh or pass --model); \
                     use --mode bm25"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let index = self.index(name)?;
        index.catch_up(&self.store, embedder, &|_, _, _| {})?;
        let query = match embedder {
            Some(e) => e.embed(&[text])?.pop(),
            None => None,
        };
        Ok(index.search(text, query.as_deref(), options)?)
    }
}
