//! What a search asks for and what it returns.

use std::str::FromStr;

use provdb_storage::{Address, RecordId, Status};
use serde::Serialize;

use crate::error::IndexError;

/// Largest k a search accepts.
pub const MAX_K: usize = 1000;

/// Which retrievers answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 only.
    Bm25,
    /// Vectors only.
    Vector,
    /// Both, fused.
    #[default]
    Hybrid,
}

impl FromStr for Mode {
    type Err = IndexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bm25" => Ok(Self::Bm25),
            "vector" => Ok(Self::Vector),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(IndexError::Invalid(format!(
                "unknown search mode '{other}' (bm25, vector, hybrid)"
            ))),
        }
    }
}

impl Mode {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Vector => "vector",
            Self::Hybrid => "hybrid",
        }
    }
}

/// How hybrid mode combines the two lists.
///
/// The default is the weighted sum with vectors weighted 2:1: measured on Cranfield and ADI
/// (`provdb eval ir --sweep`, docs/benchmarks.md), it is the setting that keeps hybrid at or
/// above the better single retriever on both, while RRF at k = 60 falls below vectors on ADI,
/// where BM25 is much weaker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fusion {
    /// Reciprocal rank fusion.
    Rrf,
    /// Weighted sum of min-max-normalised scores.
    #[default]
    WeightedSum,
}

impl FromStr for Fusion {
    type Err = IndexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rrf" => Ok(Self::Rrf),
            "weighted" | "weighted_sum" => Ok(Self::WeightedSum),
            other => Err(IndexError::Invalid(format!(
                "unknown fusion '{other}' (rrf, weighted)"
            ))),
        }
    }
}

/// Per-retriever weights of a fusion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Weights {
    /// Weight of BM25.
    pub bm25: f32,
    /// Weight of vectors.
    pub vector: f32,
}

impl Weights {
    /// The measured default weights of a fusion method: 1:2 (BM25:vector) for the weighted
    /// sum, 1:1 for RRF.
    pub fn default_for(fusion: Fusion) -> Self {
        match fusion {
            Fusion::Rrf => Self {
                bm25: 1.0,
                vector: 1.0,
            },
            Fusion::WeightedSum => Self {
                bm25: 1.0,
                vector: 2.0,
            },
        }
    }
}

impl Default for Weights {
    fn default() -> Self {
        Self::default_for(Fusion::default())
    }
}

/// Which chunks may be returned. The default returns live chunks of approved records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// Statuses retrievable; empty means `approved` only. Tombstones never are.
    pub statuses: Vec<Status>,
    /// Licenses retrievable; empty means any.
    pub licenses: Vec<String>,
    /// Also return versions that a newer version supersedes (history search).
    pub include_superseded: bool,
}

/// A search request.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Hits wanted (1..=`MAX_K`).
    pub k: usize,
    /// Retrievers.
    pub mode: Mode,
    /// Fusion method of hybrid mode.
    pub fusion: Fusion,
    /// RRF constant (default 60).
    pub rrf_k: f32,
    /// Per-retriever weights.
    pub weights: Weights,
    /// Which chunks are eligible.
    pub filters: Filters,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self {
            k: 10,
            mode: Mode::Hybrid,
            fusion: Fusion::default(),
            rrf_k: 60.0,
            weights: Weights::default(),
            filters: Filters::default(),
        }
    }
}

impl SearchOptions {
    /// Refuses a k of 0 or above `MAX_K`, negative weights and a non-positive RRF constant.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.k == 0 || self.k > MAX_K {
            return Err(IndexError::Invalid(format!(
                "k must be in 1..={MAX_K}, got {}",
                self.k
            )));
        }
        if !(self.rrf_k.is_finite() && self.rrf_k > 0.0) {
            return Err(IndexError::Invalid(
                "rrf_k must be a positive number".into(),
            ));
        }
        let w = self.weights;
        if !(w.bm25.is_finite() && w.vector.is_finite() && w.bm25 >= 0.0 && w.vector >= 0.0)
            || w.bm25 + w.vector <= 0.0
        {
            return Err(IndexError::Invalid(
                "weights must be non-negative and not both zero".into(),
            ));
        }
        if self.filters.statuses.contains(&Status::Tombstoned) {
            return Err(IndexError::Invalid(
                "tombstones are never retrievable".into(),
            ));
        }
        Ok(())
    }
}

/// One retriever's view of a hit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RetrieverScore {
    /// The retriever's own score (BM25, or cosine similarity).
    pub score: f32,
    /// 1-based rank in that retriever's list.
    pub rank: u32,
}

/// A hit from the index, before the chunk text is attached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IndexHit {
    /// Chunk ordinal within the Datanet's index.
    pub ordinal: u32,
    /// Global chunk id.
    pub chunk_id: u64,
    /// Record holding the chunk.
    pub record_id: RecordId,
    /// That record's contributor.
    pub contributor: Address,
    /// Final score (the fused score in hybrid mode).
    pub score: f32,
    /// BM25's score and rank, when BM25 found it.
    pub bm25: Option<RetrieverScore>,
    /// The vector retriever's score and rank, when it found it.
    pub vector: Option<RetrieverScore>,
}
