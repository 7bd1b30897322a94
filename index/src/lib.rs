//! provdb-index: retrieval over chunks.
//!
//! Will own: the tantivy BM25 index, the hnsw_rs vector index, roaring bitmaps over chunk ids
//! (Datanet, status, license, tombstones, grants), score fusion (RRF, weighted), and catch-up
//! from the storage change log: each index records the last storage sequence it covers, so it
//! can always be rebuilt and never holds the only copy of anything. Depends on storage and
//! kernels.
