//! `DatanetIndex`: the catalog, full-text and vector indexes of one Datanet, kept in step
//! with storage, and the search that combines them.
//!
//! Files under the index directory (all derived; deleting the directory rebuilds it the same):
//! `config.bin` (parameters), `catalog.bin` (ordinals, records, statuses; follows the storage
//! log by sequence), `bm25/` (tantivy; covers ordinals `0..n` recorded in its commit) and
//! `vectors.bin` (one vector per ordinal in order).
//!
//! Catch-up order: the catalog first (it assigns ordinals and is saved atomically), then BM25
//! and vectors, each from the first ordinal it lacks. A crash at any point leaves each part
//! at a consistent prefix, and the next catch-up finishes the work.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use provdb_storage::{DatanetId, Status, Store};
use roaring::RoaringBitmap;

use crate::Embed;
use crate::bm25::Bm25Index;
use crate::catalog::Catalog;
use crate::config::IndexConfig;
use crate::error::{IndexError, Result};
use crate::fusion::{Ranked, Scored, rrf, weighted_sum};
use crate::search::{Filters, Fusion, IndexHit, Mode, RetrieverScore, SearchOptions};
use crate::vectors::VectorIndex;

/// Chunks added to BM25 per tantivy commit.
const TEXT_BATCH: u32 = 8192;
/// Chunks embedded (and appended to the vector file) at a time.
const EMBED_BATCH: u32 = 256;

/// Which part of the index a catch-up is filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// BM25.
    Text,
    /// Embedding and the graph.
    Vectors,
}

/// Called with (stage, chunks done, chunks in total) during a catch-up.
pub type Progress<'a> = &'a (dyn Fn(Stage, u64, u64) + Sync);

/// What a catch-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatchUp {
    /// Storage sequence the catalog now covers.
    pub sequence: u64,
    /// Log entries applied.
    pub entries: usize,
    /// Chunks added to BM25.
    pub text_chunks: u32,
    /// Chunks embedded.
    pub vector_chunks: u32,
    /// Chunk ordinals in the catalog.
    pub chunks: u32,
}

/// The index of one Datanet.
pub struct DatanetIndex {
    dir: PathBuf,
    datanet_id: DatanetId,
    config: IndexConfig,
    catalog: RwLock<Catalog>,
    bm25: Bm25Index,
    vectors: RwLock<Option<VectorIndex>>,
    catch_up_lock: Mutex<()>,
}

fn poisoned() -> IndexError {
    IndexError::Internal("an index lock was poisoned by a panic".into())
}

impl DatanetIndex {
    /// Opens (or creates) the index of Datanet `datanet_id` in `dir`. Nothing is read from
    /// storage yet: call `catch_up`.
    pub fn open(dir: &Path, datanet_id: DatanetId) -> Result<Self> {
        fs_err::create_dir_all(dir).map_err(IndexError::io(dir))?;
        let config = IndexConfig::load(&dir.join("config.bin"))?;
        config.validate()?;
        let catalog = Catalog::load(&dir.join("catalog.bin"), datanet_id)?;
        let bm25 = Bm25Index::open(&dir.join("bm25"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            datanet_id,
            config,
            catalog: RwLock::new(catalog),
            bm25,
            vectors: RwLock::new(None),
            catch_up_lock: Mutex::new(()),
        })
    }

    /// Stores new parameters; they take effect when the index is next opened.
    pub fn save_config(dir: &Path, config: &IndexConfig) -> Result<()> {
        config.validate()?;
        fs_err::create_dir_all(dir).map_err(IndexError::io(dir))?;
        config.save(&dir.join("config.bin"))
    }

    /// The Datanet.
    pub fn datanet_id(&self) -> DatanetId {
        self.datanet_id
    }

    /// The parameters in force.
    pub fn config(&self) -> IndexConfig {
        self.config
    }

    /// The storage sequence the catalog covers.
    pub fn sequence(&self) -> Result<u64> {
        Ok(self.catalog.read().map_err(|_| poisoned())?.sequence())
    }

    /// (catalog chunks, BM25 chunks, embedded chunks).
    pub fn coverage(&self) -> Result<(u32, u32, u32)> {
        let chunks = self.catalog.read().map_err(|_| poisoned())?.len();
        let vectors = self
            .vectors
            .read()
            .map_err(|_| poisoned())?
            .as_ref()
            .map_or(0, VectorIndex::len);
        Ok((chunks, self.bm25.ordinals(), vectors))
    }

    /// Brings the index up to the storage's newest sequence: applies new log entries to the
    /// catalog, adds missing chunks to BM25 and, when an embedder is given, embeds the chunks
    /// the vector index lacks.
    pub fn catch_up(
        &self,
        store: &Store,
        embedder: Option<&dyn Embed>,
        progress: Progress<'_>,
    ) -> Result<CatchUp> {
        if self.is_current(store, embedder)? {
            let (chunks, _, _) = self.coverage()?;
            return Ok(CatchUp {
                sequence: self.sequence()?,
                chunks,
                ..CatchUp::default()
            });
        }
        let _writer = self.catch_up_lock.lock().map_err(|_| poisoned())?;
        let mut report = CatchUp::default();
        let from = self.sequence()?;
        let entries = store.log_since(from)?;
        if !entries.is_empty() {
            let mut catalog = self.catalog.write().map_err(|_| poisoned())?;
            report.entries = catalog.apply(store, &entries)?;
            catalog.save(&self.dir.join("catalog.bin"))?;
        }
        let (total, sequence) = {
            let catalog = self.catalog.read().map_err(|_| poisoned())?;
            (catalog.len(), catalog.sequence())
        };
        report.sequence = sequence;
        report.chunks = total;
        let mut next = self.bm25.ordinals();
        while next < total {
            let end = (next + TEXT_BATCH).min(total);
            let texts = self.chunk_texts(store, next, end)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.bm25.add_and_commit(next, &refs, sequence)?;
            report.text_chunks += end - next;
            progress(Stage::Text, u64::from(end), u64::from(total));
            next = end;
        }
        if let Some(embedder) = embedder {
            self.open_vectors(embedder)?;
            let mut next = self.coverage()?.2;
            while next < total {
                let end = (next + EMBED_BATCH).min(total);
                let texts = self.chunk_texts(store, next, end)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let vectors = embedder.embed(&refs)?;
                if vectors.len() != refs.len() {
                    return Err(IndexError::Embed(format!(
                        "{} vectors for {} texts",
                        vectors.len(),
                        refs.len()
                    )));
                }
                let mut guard = self.vectors.write().map_err(|_| poisoned())?;
                let index = guard
                    .as_mut()
                    .ok_or_else(|| IndexError::Internal("vector index not open".into()))?;
                index.append(&vectors)?;
                report.vector_chunks += end - next;
                progress(Stage::Vectors, u64::from(end), u64::from(total));
                next = end;
            }
            let mut guard = self.vectors.write().map_err(|_| poisoned())?;
            if let Some(index) = guard.as_mut() {
                index.maybe_snapshot()?;
            }
        }
        Ok(report)
    }

    /// True when nothing is left to catch up (the common case of a search): no lock taken.
    fn is_current(&self, store: &Store, embedder: Option<&dyn Embed>) -> Result<bool> {
        if store.sequence()? != self.sequence()? {
            return Ok(false);
        }
        let (chunks, text, vectors) = self.coverage()?;
        let vectors_current = match embedder {
            None => true,
            Some(e) => {
                let guard = self.vectors.read().map_err(|_| poisoned())?;
                guard
                    .as_ref()
                    .is_some_and(|v| v.model() == e.model_id() && v.dim() == e.dim())
                    && vectors == chunks
            }
        };
        Ok(text == chunks && vectors_current)
    }

    /// Opens the vector file for this embedder, unless it is open for it already.
    fn open_vectors(&self, embedder: &dyn Embed) -> Result<()> {
        let mut guard = self.vectors.write().map_err(|_| poisoned())?;
        if let Some(open) = guard.as_ref()
            && open.model() == embedder.model_id()
            && open.dim() == embedder.dim()
        {
            return Ok(());
        }
        *guard = Some(VectorIndex::open(
            &self.dir.join("vectors.bin"),
            embedder.model_id(),
            embedder.dim(),
            self.config.hnsw,
        )?);
        Ok(())
    }

    /// Texts of the chunks of ordinals `start..end`, read from storage.
    fn chunk_texts(&self, store: &Store, start: u32, end: u32) -> Result<Vec<String>> {
        let ids = self
            .catalog
            .read()
            .map_err(|_| poisoned())?
            .chunk_ids(start, end)
            .to_vec();
        let mut texts = Vec::with_capacity(ids.len());
        let mut run_start = 0;
        while run_start < ids.len() {
            let mut run_end = run_start + 1;
            while run_end < ids.len() && ids[run_end] == ids[run_end - 1] + 1 {
                run_end += 1;
            }
            let chunks = store.chunks_in(ids[run_start], ids[run_end - 1] + 1)?;
            if chunks.len() != run_end - run_start
                || chunks
                    .iter()
                    .zip(&ids[run_start..run_end])
                    .any(|(c, id)| c.chunk_id != *id)
            {
                return Err(IndexError::Internal(format!(
                    "storage returned other chunks than ids {}..={}",
                    ids[run_start],
                    ids[run_end - 1]
                )));
            }
            texts.extend(chunks.into_iter().map(|c| c.text));
            run_start = run_end;
        }
        Ok(texts)
    }

    /// Ordinals a search with these filters may return.
    pub fn allowed(&self, filters: &Filters) -> Result<RoaringBitmap> {
        let catalog = self.catalog.read().map_err(|_| poisoned())?;
        let mut allowed = if filters.statuses.is_empty() {
            catalog.with_status(Status::Approved)
        } else {
            let mut any = RoaringBitmap::new();
            for status in &filters.statuses {
                if *status != Status::Tombstoned {
                    any |= catalog.with_status(*status);
                }
            }
            any
        };
        if !filters.include_superseded {
            allowed &= catalog.live();
        }
        if !filters.licenses.is_empty() {
            let mut any = RoaringBitmap::new();
            for license in &filters.licenses {
                any |= catalog.with_license(license);
            }
            allowed &= any;
        }
        Ok(allowed)
    }

    /// Top `k` ordinals by cosine similarity among `allowed`: an exact scan when the bitmap
    /// selects at most `exact_scan_max` embedded chunks, else the graph with the bitmap as
    /// its filter. Empty when nothing is embedded yet.
    pub fn search_vectors(
        &self,
        query: &[f32],
        k: usize,
        allowed: &RoaringBitmap,
    ) -> Result<Vec<Scored>> {
        let guard = self.vectors.read().map_err(|_| poisoned())?;
        let Some(vectors) = guard.as_ref() else {
            return Ok(Vec::new());
        };
        if query.len() != vectors.dim() {
            return Err(IndexError::Invalid(format!(
                "query vector has {} dimensions, the index {}",
                query.len(),
                vectors.dim()
            )));
        }
        let mut covered = allowed.clone();
        covered.remove_range(vectors.len()..);
        let ef = self.config.hnsw.ef_search;
        Ok(if covered.len() <= self.config.exact_scan_max {
            vectors.search_exact(query, k, Some(&covered))
        } else if covered.len() == u64::from(vectors.len()) {
            vectors.search_graph(query, k, ef, None)
        } else {
            vectors.search_graph(query, k, ef, Some(&covered))
        })
    }

    /// Runs `f` on the vector index (benchmarks and tests compare graph and exact search).
    pub fn with_vectors<T>(&self, f: impl FnOnce(Option<&VectorIndex>) -> T) -> Result<T> {
        let guard = self.vectors.read().map_err(|_| poisoned())?;
        Ok(f(guard.as_ref()))
    }

    /// Searches: BM25 on `text`, vectors on `query_vector` (the embedded `text`), fused in
    /// hybrid mode. Hits carry each retriever's score and rank.
    pub fn search(
        &self,
        text: &str,
        query_vector: Option<&[f32]>,
        options: &SearchOptions,
    ) -> Result<Vec<IndexHit>> {
        options.validate()?;
        let allowed = self.allowed(&options.filters)?;
        let depth = match options.mode {
            Mode::Hybrid => options.k.max(self.config.fusion_depth),
            Mode::Bm25 | Mode::Vector => options.k,
        };
        let bm25 = match options.mode {
            Mode::Vector => None,
            Mode::Bm25 | Mode::Hybrid => {
                Some(self.bm25.search(text, depth, Arc::new(allowed.clone()))?)
            }
        };
        let vector = match options.mode {
            Mode::Bm25 => None,
            Mode::Vector | Mode::Hybrid => {
                let query = query_vector
                    .ok_or_else(|| IndexError::NoEmbedder("no query vector was given".into()))?;
                Some(self.search_vectors(query, depth, &allowed)?)
            }
        };
        let ranked = match (&bm25, &vector) {
            (Some(b), Some(v)) => {
                let lists = [
                    Ranked {
                        scored: b,
                        weight: options.weights.bm25,
                    },
                    Ranked {
                        scored: v,
                        weight: options.weights.vector,
                    },
                ];
                match options.fusion {
                    Fusion::Rrf => rrf(&lists, options.rrf_k),
                    Fusion::WeightedSum => weighted_sum(&lists),
                }
            }
            (Some(only), None) | (None, Some(only)) => only.clone(),
            (None, None) => Vec::new(),
        };
        let rank_of = |list: &Option<Vec<Scored>>, ordinal: u32| {
            list.as_ref().and_then(|l| {
                l.iter()
                    .position(|(o, _)| *o == ordinal)
                    .map(|i| RetrieverScore {
                        score: l[i].1,
                        rank: i as u32 + 1,
                    })
            })
        };
        let catalog = self.catalog.read().map_err(|_| poisoned())?;
        let mut hits = Vec::with_capacity(options.k);
        for (ordinal, score) in ranked.into_iter().take(options.k) {
            let (Some(chunk_id), Some(record)) =
                (catalog.chunk_id(ordinal), catalog.record_of(ordinal))
            else {
                return Err(IndexError::Internal(format!(
                    "ordinal {ordinal} is not cataloged"
                )));
            };
            hits.push(IndexHit {
                ordinal,
                chunk_id,
                record_id: record.record_id,
                contributor: record.contributor,
                score,
                bm25: rank_of(&bm25, ordinal),
                vector: rank_of(&vector, ordinal),
            });
        }
        Ok(hits)
    }
}
