//! The vector index of one Datanet: unit vectors by chunk ordinal in an append-only file,
//! an in-memory HNSW graph over them (hnsw_rs, dot-product distance), and exact scans.
//!
//! File `vectors.bin`: a header (magic, dimension, length and bytes of the embedder's model
//! id), then one entry per ordinal in order: `dim` little-endian f32 and the crc32 of those
//! bytes. Entry `i` is the vector of ordinal `i`, so the file's length says which ordinals
//! are covered. On open, the first entry that is short or fails its checksum (a write torn
//! by a crash) and everything after it are cut off and re-embedded by catch-up: the file is
//! derived from storage and never the only copy of anything.
//!
//! The graph is loaded from its last snapshot (`graph_file`) when one matches, the vectors
//! appended since inserted; otherwise it is rebuilt from the file. A new snapshot is written
//! when the graph has grown by a tenth since the last one (and holds at least
//! `SNAPSHOT_MIN_POINTS`).

use std::collections::BinaryHeap;
use std::io::Write;
use std::path::{Path, PathBuf};

use hnsw_rs::hnsw::Hnsw;
use roaring::RoaringBitmap;

use crate::config::HnswParams;
use crate::error::{IndexError, Result};
use crate::file::sync_dir;
use crate::fusion::Scored;
use crate::graph_file::{DotDistance, Graph};

const MAGIC: &[u8; 8] = b"PDBVEC01";
/// Largest dimension accepted (the header is outside input on reopen).
const MAX_DIM: usize = 8192;
/// Smaller graphs are rebuilt on open (in well under a second) rather than snapshotted.
const SNAPSHOT_MIN_POINTS: u32 = 5000;

/// Vectors and graph of one Datanet.
pub struct VectorIndex {
    path: PathBuf,
    dim: usize,
    model: String,
    data: Vec<f32>,
    graph: Graph,
    params: HnswParams,
    snapshot_points: u32,
}

impl VectorIndex {
    /// Opens (or creates) the vector file for vectors of `dim` from `model`. A file written by
    /// another model or dimension is discarded: its vectors would not compare with new ones.
    pub fn open(path: &Path, model: &str, dim: usize, params: HnswParams) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(IndexError::Invalid(format!(
                "vector dimension {dim} is not in 1..={MAX_DIM}"
            )));
        }
        let mut data = Vec::new();
        match fs_err::read(path) {
            Ok(bytes) => match parse_header(&bytes) {
                Some((file_dim, file_model, body)) if file_dim == dim && file_model == model => {
                    let entry = dim * 4 + 4;
                    let whole = valid_entries(body, dim);
                    data.reserve(whole * dim);
                    for bytes in body.chunks_exact(entry).take(whole) {
                        data.extend(
                            bytes[..dim * 4]
                                .chunks_exact(4)
                                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                        );
                    }
                    let keep = (bytes.len() - body.len() + whole * entry) as u64;
                    if keep < bytes.len() as u64 {
                        truncate(path, keep)?;
                    }
                }
                _ => write_header(path, model, dim)?,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_header(path, model, dim)?,
            Err(e) => {
                return Err(IndexError::Io {
                    path: path.into(),
                    source: e,
                });
            }
        }
        let len = (data.len() / dim) as u32;
        let dir = path.parent().unwrap_or(Path::new("."));
        let (graph, snapshot_points) = match crate::graph_file::load(dir, model, dim, params, len)?
        {
            Some((graph, points)) => (graph, points),
            None => (new_graph(params, len as usize), 0),
        };
        let index = Self {
            path: path.to_path_buf(),
            dim,
            model: model.to_string(),
            data,
            graph,
            params,
            snapshot_points,
        };
        let start = snapshot_points as usize * dim;
        index.insert_into_graph(&index.data[start..], snapshot_points as usize);
        Ok(index)
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The embedder model these vectors came from.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Ordinals covered: `0..len`.
    pub fn len(&self) -> u32 {
        (self.data.len() / self.dim) as u32
    }

    /// True when no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The graph parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// The vector of an ordinal.
    pub fn vector(&self, ordinal: u32) -> Option<&[f32]> {
        let start = ordinal as usize * self.dim;
        self.data.get(start..start + self.dim)
    }

    /// Appends the vectors of the next ordinals: durably to the file first (synced), then to
    /// memory and the graph.
    pub fn append(&mut self, vectors: &[Vec<f32>]) -> Result<()> {
        let mut bytes = Vec::with_capacity(vectors.len() * (self.dim * 4 + 4));
        let mut flat = Vec::with_capacity(vectors.len() * self.dim);
        for vector in vectors {
            if vector.len() != self.dim {
                return Err(IndexError::Embed(format!(
                    "the embedder returned {} dimensions, the index holds {}",
                    vector.len(),
                    self.dim
                )));
            }
            let start = bytes.len();
            for x in vector {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            let crc = crc32fast::hash(&bytes[start..]);
            bytes.extend_from_slice(&crc.to_le_bytes());
            flat.extend_from_slice(vector);
        }
        let mut file = fs_err::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(IndexError::io(&self.path))?;
        file.write_all(&bytes).map_err(IndexError::io(&self.path))?;
        file.sync_data().map_err(IndexError::io(&self.path))?;
        let first = self.len() as usize;
        self.insert_into_graph(&flat, first);
        self.data.extend_from_slice(&flat);
        Ok(())
    }

    /// Writes a graph snapshot when the graph is large enough and has grown by a tenth since
    /// the last one; returns whether it wrote one.
    pub fn maybe_snapshot(&mut self) -> Result<bool> {
        let len = self.len();
        let grown = len - self.snapshot_points.min(len);
        if len < SNAPSHOT_MIN_POINTS || grown == 0 || (self.snapshot_points > 0 && grown * 10 < len)
        {
            return Ok(false);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::graph_file::save(dir, &self.graph, len, &self.model, self.dim, self.params)?;
        self.snapshot_points = len;
        Ok(true)
    }

    /// Ordinals covered by the graph snapshot on disk.
    pub fn snapshot_points(&self) -> u32 {
        self.snapshot_points
    }

    fn insert_into_graph(&self, flat: &[f32], first_ordinal: usize) {
        let items: Vec<(&[f32], usize)> = flat
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, v)| (v, first_ordinal + i))
            .collect();
        if items.len() > 64 {
            self.graph.parallel_insert_slice(&items);
        } else {
            for item in items {
                self.graph.insert_slice(item);
            }
        }
    }

    /// Top `k` ordinals by dot product, walking the graph; `allowed` (when given) is honoured
    /// inside the graph search, so filtered-out nodes are traversed but never returned.
    pub fn search_graph(
        &self,
        query: &[f32],
        k: usize,
        ef_search: usize,
        allowed: Option<&RoaringBitmap>,
    ) -> Vec<Scored> {
        let ef = ef_search.max(k);
        let neighbours = match allowed {
            None => self.graph.search(query, k, ef),
            Some(bitmap) => {
                let filter = |id: &usize| bitmap.contains(*id as u32);
                self.graph.search_filter(query, k, ef, Some(&filter))
            }
        };
        let mut out: Vec<Scored> = neighbours
            .into_iter()
            .map(|n| (n.d_id as u32, 1.0 - n.distance))
            .collect();
        // Equal scores in ordinal order, as the exact scan gives them.
        crate::fusion::sort_best_first(&mut out);
        out
    }

    /// Top `k` ordinals by dot product among `allowed` (all when `None`), computed exactly.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&RoaringBitmap>,
    ) -> Vec<Scored> {
        let mut top = TopK::new(k);
        match allowed {
            Some(bitmap) => {
                for ordinal in bitmap.iter() {
                    if let Some(v) = self.vector(ordinal) {
                        top.push(ordinal, provdb_kernels::distance::dot(query, v));
                    }
                }
            }
            None => {
                for (ordinal, v) in self.data.chunks_exact(self.dim).enumerate() {
                    top.push(ordinal as u32, provdb_kernels::distance::dot(query, v));
                }
            }
        }
        top.into_sorted()
    }
}

fn new_graph(params: HnswParams, capacity: usize) -> Graph {
    Hnsw::new(
        params.m,
        capacity.max(1024),
        16,
        params.ef_construction,
        DotDistance,
    )
}

fn parse_header(bytes: &[u8]) -> Option<(usize, String, &[u8])> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return None;
    }
    let dim = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let model_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let model = bytes.get(16..16 + model_len)?;
    let model = String::from_utf8(model.to_vec()).ok()?;
    Some((dim, model, &bytes[16 + model_len..]))
}

/// How many leading entries are whole and pass their checksum.
fn valid_entries(body: &[u8], dim: usize) -> usize {
    body.chunks_exact(dim * 4 + 4)
        .take_while(|entry| {
            let (vector, crc) = entry.split_at(dim * 4);
            crc32fast::hash(vector).to_le_bytes() == crc
        })
        .count()
}

fn write_header(path: &Path, model: &str, dim: usize) -> Result<()> {
    let mut header = Vec::with_capacity(16 + model.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(dim as u32).to_le_bytes());
    header.extend_from_slice(&(model.len() as u32).to_le_bytes());
    header.extend_from_slice(model.as_bytes());
    let mut file = fs_err::File::create(path).map_err(IndexError::io(path))?;
    file.write_all(&header).map_err(IndexError::io(path))?;
    file.sync_all().map_err(IndexError::io(path))?;
    sync_dir(path)
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    let file = fs_err::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(IndexError::io(path))?;
    file.set_len(len).map_err(IndexError::io(path))?;
    file.sync_all().map_err(IndexError::io(path))
}

/// A bounded min-heap keeping the `k` best scores.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<(OrderedScore, u32)>>,
}

#[derive(Clone, Copy)]
struct OrderedScore(f32);

impl PartialEq for OrderedScore {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for OrderedScore {}

impl PartialOrd for OrderedScore {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedScore {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub(crate) fn push(&mut self, ordinal: u32, score: f32) {
        if self.heap.len() < self.k {
            self.heap
                .push(std::cmp::Reverse((OrderedScore(score), ordinal)));
        } else if let Some(std::cmp::Reverse((worst, _))) = self.heap.peek()
            && score > worst.0
        {
            self.heap.pop();
            self.heap
                .push(std::cmp::Reverse((OrderedScore(score), ordinal)));
        }
    }

    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse((s, o))| (o, s.0))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const DIM: usize = 32;

    fn unit(mut v: Vec<f32>) -> Vec<f32> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    /// Vectors around 200 random centres, as embeddings of related texts are.
    fn clustered(n: usize, rng: &mut StdRng) -> Vec<Vec<f32>> {
        let centres: Vec<Vec<f32>> = (0..200)
            .map(|_| unit((0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()))
            .collect();
        (0..n)
            .map(|i| {
                let c = &centres[i % centres.len()];
                unit(
                    c.iter()
                        .map(|x| x + rng.random_range(-0.15f32..0.15))
                        .collect(),
                )
            })
            .collect()
    }

    fn recall(truth: &[Scored], got: &[Scored]) -> f64 {
        let found = got
            .iter()
            .filter(|(o, _)| truth.iter().any(|(t, _)| t == o))
            .count();
        found as f64 / truth.len().max(1) as f64
    }

    #[test]
    fn filtered_graph_search_recalls_the_exact_top_10_at_1_and_10_percent() -> Result<()> {
        let dir = tempfile::tempdir().map_err(IndexError::io("tempdir"))?;
        let mut rng = StdRng::seed_from_u64(5);
        let n = 10_000;
        let mut index = VectorIndex::open(
            &dir.path().join("v.bin"),
            "test",
            DIM,
            HnswParams::default(),
        )?;
        index.append(&clustered(n, &mut rng))?;
        assert_eq!(index.len() as usize, n);
        for selectivity in [0.01, 0.10] {
            let bitmap: RoaringBitmap = (0..n as u32)
                .filter(|_| rng.random::<f64>() < selectivity)
                .collect();
            let queries = clustered(50, &mut rng);
            let mut total = 0.0;
            for q in &queries {
                let exact = index.search_exact(q, 10, Some(&bitmap));
                assert!(exact.iter().all(|(o, _)| bitmap.contains(*o)));
                let graph =
                    index.search_graph(q, 10, HnswParams::default().ef_search, Some(&bitmap));
                assert!(
                    graph.iter().all(|(o, _)| bitmap.contains(*o)),
                    "the filter holds"
                );
                total += recall(&exact, &graph);
            }
            let mean = total / queries.len() as f64;
            assert!(
                mean >= 0.95,
                "recall@10 {mean:.3} at selectivity {selectivity}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_rest_reloads() -> Result<()> {
        let dir = tempfile::tempdir().map_err(IndexError::io("tempdir"))?;
        let path = dir.path().join("v.bin");
        let mut rng = StdRng::seed_from_u64(9);
        let vectors = clustered(100, &mut rng);
        {
            let mut index = VectorIndex::open(&path, "m", DIM, HnswParams::default())?;
            index.append(&vectors)?;
        }
        let len = std::fs::metadata(&path)
            .map_err(IndexError::io(&path))?
            .len();
        // Half of a 101st entry, as a crash in the middle of a write leaves it.
        let mut file = fs_err::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(IndexError::io(&path))?;
        file.write_all(&[7u8; DIM * 2])
            .map_err(IndexError::io(&path))?;
        drop(file);
        let index = VectorIndex::open(&path, "m", DIM, HnswParams::default())?;
        assert_eq!(index.len(), 100);
        assert_eq!(index.vector(99), Some(&vectors[99][..]));
        assert_eq!(
            std::fs::metadata(&path)
                .map_err(IndexError::io(&path))?
                .len(),
            len
        );
        let top = index.search_exact(&vectors[42], 1, None);
        assert_eq!(top[0].0, 42);
        // Another model's file is discarded, not mixed.
        let other = VectorIndex::open(&path, "other", DIM, HnswParams::default())?;
        assert!(other.is_empty());
        Ok(())
    }

    #[test]
    fn a_graph_snapshot_reloads_and_a_damaged_one_is_rebuilt() -> Result<()> {
        let dir = tempfile::tempdir().map_err(IndexError::io("tempdir"))?;
        let path = dir.path().join("vectors.bin");
        let mut rng = StdRng::seed_from_u64(3);
        let vectors = clustered(6100, &mut rng);
        let queries = clustered(20, &mut rng);
        // A cheaper graph than the default: this test is about files, not recall.
        let params = HnswParams {
            m: 12,
            ef_construction: 48,
            ef_search: 64,
        };
        let before: Vec<Vec<Scored>> = {
            let mut index = VectorIndex::open(&path, "m", DIM, params)?;
            index.append(&vectors[..6000])?;
            assert!(index.maybe_snapshot()?, "6,000 points are snapshotted");
            assert!(!index.maybe_snapshot()?, "nothing new, no second snapshot");
            queries
                .iter()
                .map(|q| index.search_graph(q, 10, 64, None))
                .collect()
        };
        {
            let mut index = VectorIndex::open(&path, "m", DIM, params)?;
            assert_eq!((index.len(), index.snapshot_points()), (6000, 6000));
            for (q, expected) in queries.iter().zip(&before) {
                assert_eq!(
                    &index.search_graph(q, 10, 64, None),
                    expected,
                    "same graph reloaded"
                );
            }
            index.append(&vectors[6000..])?;
            assert!(!index.maybe_snapshot()?, "100 new points are under a tenth");
        }
        let index = VectorIndex::open(&path, "m", DIM, params)?;
        assert_eq!((index.len(), index.snapshot_points()), (6100, 6000));
        let found = index.search_graph(&vectors[6050], 1, 64, None);
        assert_eq!(
            found[0].0, 6050,
            "points appended after the snapshot are in the graph"
        );
        drop(index);
        // Damage the graph file: the snapshot is refused and the graph rebuilt, no panic.
        let graph_file = dir.path().join("graph-6000").join("graph.hnsw.graph");
        let mut bytes = std::fs::read(&graph_file).map_err(IndexError::io(&graph_file))?;
        bytes[100] ^= 0xff;
        std::fs::write(&graph_file, bytes).map_err(IndexError::io(&graph_file))?;
        let index = VectorIndex::open(&path, "m", DIM, params)?;
        assert_eq!((index.len(), index.snapshot_points()), (6100, 0));
        assert_eq!(index.search_graph(&vectors[17], 1, 64, None)[0].0, 17);
        // Other graph parameters do not reuse the snapshot either.
        let other = HnswParams { m: 8, ..params };
        assert_eq!(
            VectorIndex::open(&path, "m", DIM, other)?.snapshot_points(),
            0
        );
        Ok(())
    }
}
