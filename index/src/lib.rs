//! provdb-index: retrieval over the chunks of each Datanet.
//!
//! Owns, per Datanet (`DatanetIndex`, in its own directory): the catalog of chunk ordinals with
//! roaring bitmaps for status, license and liveness (`catalog`), the tantivy BM25 index
//! (`bm25`), the vector file and hnsw_rs graph (`vectors`, snapshots in `graph_file`), and the fusion of their ranked
//! lists (`fusion`: RRF and weighted min-max sum). `minhash` is near-duplicate detection's core
//! (MinHash signatures of word shingles, LSH bands, exact Jaccard).
//!
//! Invariants: every index is derived from storage and never holds the only copy of
//! anything; each part records how far it covers (the catalog the last storage sequence, the
//! others the ordinals) and `DatanetIndex::catch_up` finishes whatever a crash interrupted;
//! a rebuild from scratch produces the same ordinals and so the same results. Depends on
//! storage and kernels only: embedding comes in through the `Embed` trait.

pub mod bm25;
pub mod catalog;
pub mod config;
mod datanet;
mod error;
mod file;
pub mod fusion;
mod graph_file;
pub mod minhash;
mod search;
pub mod vectors;

pub use config::{HnswParams, IndexConfig};
pub use datanet::{CatchUp, DatanetIndex, Progress, Stage};
pub use error::{IndexError, Result};
pub use search::{Filters, Fusion, IndexHit, MAX_K, Mode, RetrieverScore, SearchOptions, Weights};

/// A text embedder producing unit vectors (the root crate adapts provdb-inference's).
pub trait Embed: Send + Sync {
    /// Identifies the model; vectors of different models are never mixed in one index.
    fn model_id(&self) -> &str;
    /// Dimension of the vectors.
    fn dim(&self) -> usize;
    /// One unit vector per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Tokens the model reads of `text` (after truncation), when it can tell.
    fn token_count(&self, _text: &str) -> Option<usize> {
        None
    }
}
