//! Snapshots of the HNSW graph, so that opening a large index does not rebuild the graph.
//!
//! A snapshot is a directory `graph-N/` holding hnsw_rs's dump (`graph.hnsw.graph`,
//! `graph.hnsw.data`) of the graph over ordinals `0..N`, and `graph.bin` (a checksummed
//! snapshot, written last and atomically) names the current directory with N, the crc32 of
//! both files, the vector model, dimension and graph parameters. A snapshot is only loaded
//! when all of these match and the files pass their checksums (hnsw_rs asserts on damaged
//! input, so it must never see any); otherwise the graph is rebuilt from the vector file.
//! Vectors appended after the snapshot are inserted on load. Like everything in the index,
//! snapshots are derived data.

use std::io::Read;
use std::path::{Path, PathBuf};

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use crate::config::HnswParams;
use crate::error::{IndexError, Result};
use crate::file::{read_snapshot, sync_dir, write_snapshot};

const MAGIC: &[u8; 8] = b"PDBGRF01";
const BASENAME: &str = "graph";

/// What `graph.bin` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GraphMeta {
    dir: String,
    pub(crate) points: u32,
    dim: usize,
    model: String,
    params: HnswParams,
    graph_crc: u32,
    data_crc: u32,
}

/// Cosine distance of unit vectors, `1 - dot`, on provdb's SIMD-friendly kernel: the graph's
/// distance, and so part of what a snapshot holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        provdb_kernels::distance::unit_cosine_distance(va, vb)
    }
}

/// The HNSW graph over unit vectors.
pub(crate) type Graph = Hnsw<'static, f32, DotDistance>;

fn file_crc(path: &Path) -> Result<u32> {
    let mut file = fs_err::File::open(path).map_err(IndexError::io(path))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(IndexError::io(path))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize())
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{BASENAME}.hnsw.graph")),
        dir.join(format!("{BASENAME}.hnsw.data")),
    )
}

/// Loads the snapshot under `index_dir` if it matches; `None` when there is none or it does
/// not match (the caller rebuilds).
pub(crate) fn load(
    index_dir: &Path,
    model: &str,
    dim: usize,
    params: HnswParams,
    vectors: u32,
) -> Result<Option<(Graph, u32)>> {
    let meta_path = index_dir.join("graph.bin");
    let Some(bytes) = read_snapshot(&meta_path, MAGIC)? else {
        return Ok(None);
    };
    let Ok(meta) = serde_json::from_slice::<GraphMeta>(&bytes) else {
        return Ok(None);
    };
    if meta.model != model || meta.dim != dim || meta.params != params || meta.points > vectors {
        return Ok(None);
    }
    let dir = index_dir.join(&meta.dir);
    let (graph_path, data_path) = files(&dir);
    if !graph_path.is_file()
        || !data_path.is_file()
        || file_crc(&graph_path)? != meta.graph_crc
        || file_crc(&data_path)? != meta.data_crc
    {
        return Ok(None);
    }
    // hnsw_rs ties the graph's lifetime to its loader. Without a memory map the loaded graph
    // owns its data, but the type still borrows the loader, so the loader (a path and a few
    // counters) is leaked once per load to give the graph a 'static lifetime.
    let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(&dir, BASENAME)));
    let graph: Graph = io
        .load_hnsw_with_dist::<f32, DotDistance>(DotDistance)
        .map_err(|e| IndexError::Corrupt {
            path: dir.clone(),
            reason: format!("graph does not load: {e}"),
        })?;
    if graph.get_nb_point() != meta.points as usize {
        return Ok(None);
    }
    Ok(Some((graph, meta.points)))
}

/// Writes a snapshot of `graph` (covering ordinals `0..points`) and makes it current.
pub(crate) fn save(
    index_dir: &Path,
    graph: &Graph,
    points: u32,
    model: &str,
    dim: usize,
    params: HnswParams,
) -> Result<()> {
    let name = format!("graph-{points}");
    let tmp = index_dir.join(format!("{name}.tmp"));
    if tmp.exists() {
        fs_err::remove_dir_all(&tmp).map_err(IndexError::io(&tmp))?;
    }
    fs_err::create_dir_all(&tmp).map_err(IndexError::io(&tmp))?;
    let written = graph
        .file_dump(&tmp, BASENAME)
        .map_err(|e| IndexError::Io {
            path: tmp.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    if written != BASENAME {
        return Err(IndexError::Internal(format!(
            "hnsw_rs dumped to '{written}' instead of '{BASENAME}'"
        )));
    }
    let (graph_path, data_path) = files(&tmp);
    for path in [&graph_path, &data_path] {
        fs_err::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(IndexError::io(path))?;
    }
    let meta = GraphMeta {
        dir: name.clone(),
        points,
        dim,
        model: model.to_string(),
        params,
        graph_crc: file_crc(&graph_path)?,
        data_crc: file_crc(&data_path)?,
    };
    let target = index_dir.join(&name);
    if target.exists() {
        fs_err::remove_dir_all(&target).map_err(IndexError::io(&target))?;
    }
    fs_err::rename(&tmp, &target).map_err(IndexError::io(&target))?;
    sync_dir(&target)?;
    let meta_path = index_dir.join("graph.bin");
    let previous = read_snapshot(&meta_path, MAGIC)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<GraphMeta>(&b).ok());
    let json = serde_json::to_vec(&meta)
        .map_err(|e| IndexError::Internal(format!("graph meta does not encode: {e}")))?;
    write_snapshot(&meta_path, MAGIC, &json)?;
    if let Some(previous) = previous
        && previous.dir != name
    {
        let old = index_dir.join(previous.dir);
        // Best effort: a leftover snapshot directory is only wasted space.
        let _ = fs_err::remove_dir_all(old);
    }
    Ok(())
}
