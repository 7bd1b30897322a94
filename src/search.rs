//! Search over a Datanet: the `Db` side of provdb-index. Owns the registry of open indexes
//! (one per Datanet, under `DIR/index/NAME/`), the adapter from the sentence embedder to the
//! index's `Embed` trait, read-access checks, and attaching chunk text to hits.
//!
//! Invariant: a search first catches its index up with storage, so a commit (new records, a
//! status change, a tombstone, a new version) is reflected in the very next search.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use provdb_index::{
    CatchUp, DatanetIndex, Embed, IndexConfig, IndexError, IndexHit, Mode, Progress,
};
use provdb_inference::{Embedder, EmbedderConfig};
use provdb_query::Caller;
use provdb_storage::{Address, Datanet, RecordId};
use serde::{Serialize, Serializer};

pub use provdb_index::{
    Filters, Fusion, HnswParams, MAX_K, RetrieverScore, SearchOptions, Stage, Weights,
};

use crate::db::Db;
use crate::error::{Error, Result};

/// The open indexes of a database, by Datanet name.
#[derive(Default)]
pub(crate) struct Indexes {
    open: Mutex<HashMap<String, Arc<DatanetIndex>>>,
}

/// The sentence embedder as the index sees it.
pub struct SentenceEmbedder {
    embedder: Embedder,
    model_id: String,
}

impl SentenceEmbedder {
    /// Loads the embedder in `dir` (a MiniLM-class model directory).
    pub fn load(dir: &Path) -> Result<Self> {
        let embedder = Embedder::load(dir, EmbedderConfig::default())?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(Self {
            model_id: format!("{name}/{}", embedder.dim()),
            embedder,
        })
    }
}

impl Embed for SentenceEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.embedder.dim()
    }

    fn embed(&self, texts: &[&str]) -> provdb_index::Result<Vec<Vec<f32>>> {
        self.embedder
            .embed(texts)
            .map_err(|e| IndexError::Embed(e.to_string()))
    }

    fn token_count(&self, text: &str) -> Option<usize> {
        let ids = self.embedder.token_ids(text).ok()?;
        Some(ids.len().min(self.embedder.max_tokens()))
    }
}

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
        let mut open = self
            .indexes
            .open
            .lock()
            .map_err(|_| Error::Internal("index registry lock poisoned".into()))?;
        if let Some(index) = open.get(name) {
            return Ok(Arc::clone(index));
        }
        let index = Arc::new(DatanetIndex::open(&self.index_dir(&datanet), datanet.id)?);
        open.insert(name.to_string(), Arc::clone(&index));
        Ok(index)
    }

    /// How many storage sequence numbers the least caught-up open index is behind (0 when
    /// none is open). Indexes catch up on the next search; this is what that search will do.
    pub fn index_lag(&self) -> Result<u64> {
        let open: Vec<Arc<DatanetIndex>> = self
            .indexes
            .open
            .lock()
            .map_err(|_| Error::Internal("index registry lock poisoned".into()))?
            .values()
            .cloned()
            .collect();
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
        self.forget_index(name)
    }

    /// Deletes a Datanet's index files and rebuilds them from storage.
    pub fn rebuild_index(&self, name: &str, progress: Progress<'_>) -> Result<CatchUp> {
        let datanet = self.store.datanet(name)?;
        self.forget_index(name)?;
        let dir = self.index_dir(&datanet);
        let config = IndexConfig::load(&dir.join("config.bin")).unwrap_or_default();
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(Error::io(&dir))?;
        }
        DatanetIndex::save_config(&dir, &config)?;
        self.catch_up_index(name, progress)
    }

    fn forget_index(&self, name: &str) -> Result<()> {
        self.indexes
            .open
            .lock()
            .map_err(|_| Error::Internal("index registry lock poisoned".into()))?
            .remove(name);
        Ok(())
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
