//! Per-Datanet index parameters, stored beside the index (`config.bin`, a checksummed JSON
//! snapshot). Changing the graph parameters rebuilds the graph from the stored vectors on the
//! next open; nothing needs re-embedding.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IndexError, Result};
use crate::file::{read_snapshot, write_snapshot};

const MAGIC: &[u8; 8] = b"PDBCFG01";

/// HNSW graph parameters (Malkov & Yashunin, 2016).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Neighbours kept per node and layer (M).
    pub m: usize,
    /// Candidate list size while building (efConstruction).
    pub ef_construction: usize,
    /// Candidate list size while searching (efSearch); raised to k when k is larger.
    pub ef_search: usize,
}

impl Default for HnswParams {
    /// Measured on 100,000 384-d unit vectors (`provdb bench search`, docs/benchmarks.md):
    /// ef_construction 200 gives a better graph than 100 for twice the build time; ef_search
    /// 48 is the edge (recall@10 0.95 at 29x the exact scan's QPS), 64 keeps a margin (0.96
    /// at 26x).
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// Everything tunable about one Datanet's index.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexConfig {
    /// The vector graph.
    pub hnsw: HnswParams,
    /// A filtered vector search whose bitmap selects at most this many chunks scans them
    /// exactly instead of walking the graph (measured crossover, docs/benchmarks.md).
    pub exact_scan_max: u64,
    /// Candidates each retriever contributes to a hybrid search (at least k).
    pub fusion_depth: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            hnsw: HnswParams::default(),
            exact_scan_max: 20_000,
            fusion_depth: 100,
        }
    }
}

impl IndexConfig {
    /// Refuses parameters hnsw_rs or the search cannot use.
    pub fn validate(&self) -> Result<()> {
        let h = &self.hnsw;
        if !(2..=128).contains(&h.m) {
            return Err(IndexError::Invalid(format!(
                "hnsw m {} is not in 2..=128",
                h.m
            )));
        }
        if !(1..=4096).contains(&h.ef_construction) || !(1..=4096).contains(&h.ef_search) {
            return Err(IndexError::Invalid(
                "hnsw ef_construction and ef_search must be in 1..=4096".into(),
            ));
        }
        if !(1..=10_000).contains(&self.fusion_depth) {
            return Err(IndexError::Invalid(
                "fusion depth must be in 1..=10000".into(),
            ));
        }
        Ok(())
    }

    /// The stored configuration, or the default when none is stored.
    pub fn load(path: &Path) -> Result<Self> {
        let Some(bytes) = read_snapshot(path, MAGIC)? else {
            return Ok(Self::default());
        };
        serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
            path: path.into(),
            reason: format!("config does not parse: {e}"),
        })
    }

    /// Stores the configuration.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| IndexError::Internal(format!("config does not encode: {e}")))?;
        write_snapshot(path, MAGIC, &bytes)
    }
}
