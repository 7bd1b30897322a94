//! `provdb bench search`: retrieval over `--chunks` chunks (Cranfield text replicated with
//! variations, one chunk per record), in one run: exact brute-force vector search (the
//! baseline), HNSW QPS and recall@10 against it for a sweep of ef_search, filtered search at
//! several selectivities (graph with the bitmap as filter against an exact scan of the
//! bitmap, which gives the measured switch-over point), BM25 QPS, hybrid latency p50/p99
//! without the query embedding, and index build and reopen times.
//!
//! Vectors are synthetic 384-d unit vectors (embedding 100,000 chunks with MiniLM would take
//! over an hour on this machine and measure the embedder, not the index), in one of two models:
//! - `lowrank` (default): like sentence embeddings, they have a low intrinsic dimension: each
//!   source document has a random point in a 24-d latent space, each chunk (and query) a
//!   point near its document's, mapped into 384-d by a fixed random matrix, plus a little
//!   ambient noise; similarity varies smoothly, as between related texts.
//! - `clusters`: a random 384-d centre per document and independent noise around it. All
//!   centres are nearly orthogonal, so away from its cluster a query sees a plateau of equal
//!   distances: the hard case for any greedy graph search.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use provdb::index::{Embed, IndexError, Mode, SearchOptions};
use provdb::smart::parse_documents;
use provdb::{Address, Datanet, Db, IngestOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::output::{UserError, print_json};

/// The options of `provdb-bench search`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Chunks to index (Cranfield and ADI text replicated with variations).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) chunks: usize,
    /// Queries timed per measurement.
    #[arg(long, default_value_t = 200)]
    pub(crate) queries: usize,
    /// Source documents the synthetic vectors are drawn around.
    #[arg(long, default_value_t = 1482)]
    pub(crate) clusters: usize,
    /// HNSW M (default: the index default).
    #[arg(long)]
    pub(crate) m: Option<usize>,
    /// HNSW ef_construction (default: the index default).
    #[arg(long)]
    pub(crate) ef_construction: Option<usize>,
    /// Synthetic vector model: lowrank (embedding-like, 24-d latent) or clusters (hard case).
    #[arg(long, default_value = "lowrank")]
    pub(crate) vectors: String,
    /// Directory with cran.all.1400 and cran.qry.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

const DIM: usize = 384;
/// Per-component noise around a centre (`clusters`): variations at cosine ~0.74.
const NOISE: f32 = 0.03;
/// Latent dimension of the `lowrank` model.
const LATENT: usize = 24;
/// Spread of chunks around their document in latent space, and ambient noise (`lowrank`).
const LATENT_SPREAD: f32 = 0.35;
const AMBIENT_NOISE: f32 = 0.01;

/// Deterministic synthetic embedder: the first 48 bytes of a text pick its document.
struct Synthetic {
    lowrank: bool,
    centres: Vec<Vec<f32>>,
    basis: Vec<Vec<f32>>,
}

fn seed_of(text: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn unit(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller.
    let u1: f32 = rng.random_range(1e-7f32..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

impl Synthetic {
    fn new(clusters: usize, lowrank: bool) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let width = if lowrank { LATENT } else { DIM };
        let centres = (0..clusters.max(1))
            .map(|_| {
                let mut v: Vec<f32> = (0..width).map(|_| gaussian(&mut rng)).collect();
                if !lowrank {
                    unit(&mut v);
                }
                v
            })
            .collect();
        let basis = (0..DIM)
            .map(|_| (0..LATENT).map(|_| gaussian(&mut rng)).collect())
            .collect();
        Self {
            lowrank,
            centres,
            basis,
        }
    }

    fn near(&self, centre: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        let c = &self.centres[centre % self.centres.len()];
        let mut v: Vec<f32> = if self.lowrank {
            let z: Vec<f32> = c
                .iter()
                .map(|x| x + LATENT_SPREAD * gaussian(&mut rng))
                .collect();
            self.basis
                .iter()
                .map(|row| {
                    row.iter().zip(&z).map(|(a, b)| a * b).sum::<f32>()
                        + AMBIENT_NOISE * (LATENT as f32).sqrt() * gaussian(&mut rng)
                })
                .collect()
        } else {
            c.iter().map(|x| x + NOISE * gaussian(&mut rng)).collect()
        };
        unit(&mut v);
        v
    }
}

impl Embed for Synthetic {
    fn model_id(&self) -> &str {
        if self.lowrank {
            "synthetic-lowrank/384"
        } else {
            "synthetic-clusters/384"
        }
    }
    fn dim(&self) -> usize {
        DIM
    }
    fn embed(&self, texts: &[&str]) -> provdb::index::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let head: String = t.chars().take(48).collect();
                self.near(seed_of(&head) as usize, seed_of(t))
            })
            .collect())
    }
}

#[derive(Serialize)]
struct Timing {
    queries: usize,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    qps: f64,
}

fn timing(mut latencies_ms: Vec<f64>) -> Timing {
    latencies_ms.sort_by(f64::total_cmp);
    let n = latencies_ms.len().max(1);
    let total: f64 = latencies_ms.iter().sum();
    let at = |q: f64| {
        latencies_ms
            .get(((n as f64 * q) as usize).min(n - 1))
            .copied()
            .unwrap_or(0.0)
    };
    Timing {
        queries: latencies_ms.len(),
        mean_ms: total / n as f64,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        qps: 1000.0 * n as f64 / total.max(1e-9),
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64() * 1000.0)
}

fn recall(truth: &[(u32, f32)], got: &[(u32, f32)]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = got
        .iter()
        .filter(|(o, _)| truth.iter().any(|(t, _)| t == o))
        .count();
    hits as f64 / truth.len() as f64
}

#[derive(Serialize)]
struct GraphPoint {
    ef_search: usize,
    recall_at_10: f64,
    timing: Timing,
    qps_vs_exact: f64,
}

#[derive(Serialize)]
struct FilteredPoint {
    selectivity: f64,
    selected: u64,
    exact_scan: Timing,
    graph_filtered: Timing,
    graph_recall_at_10: f64,
    auto_path: &'static str,
    auto_recall_at_10: f64,
}

#[derive(Serialize)]
struct Report {
    chunks: u32,
    vectors: String,
    load_average_before: String,
    load_average_after: String,
    build_text_seconds: f64,
    build_vectors_seconds: f64,
    reopen_graph_seconds: f64,
    hnsw: provdb::index::HnswParams,
    exact: Timing,
    graph: Vec<GraphPoint>,
    default_ef_search: usize,
    filtered: Vec<FilteredPoint>,
    measured_exact_scan_max: u64,
    configured_exact_scan_max: u64,
    bm25: Timing,
    hybrid: Timing,
    targets: Targets,
}

#[derive(Serialize)]
struct Targets {
    recall_at_10_min: f64,
    qps_vs_exact_min: f64,
    hybrid_p50_ms_max: f64,
    met: bool,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn write_corpus(
    dir: &Path,
    collection: &Path,
    chunks: usize,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let path = collection.join("cran.all.1400");
    let text = fs_err::read_to_string(&path)?;
    let docs: Vec<_> = parse_documents(&text, &path.display().to_string())?
        .into_iter()
        .filter(|d| !d.text.trim().is_empty())
        .collect();
    if docs.is_empty() {
        return Err(UserError(format!("{}: no documents", path.display())).into());
    }
    let words: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.text.split_whitespace())
        .take(5000)
        .collect();
    let mut rng = StdRng::seed_from_u64(11);
    let mut paths = Vec::new();
    let per_file = 10_000;
    for file in 0..chunks.div_ceil(per_file) {
        let path = dir.join(format!("part-{file:03}.jsonl"));
        let mut out = std::io::BufWriter::new(fs_err::File::create(&path)?);
        for i in file * per_file..((file + 1) * per_file).min(chunks) {
            let doc = &docs[i % docs.len()];
            // A variation: the document, then a copy number and a few words drawn from the corpus.
            let extra: Vec<&str> = (0..6)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            let text = format!("{} (copy {i}) {}", doc.text, extra.join(" "));
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({ "doc_id": doc.id, "text": text }),
            )?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.chunks < 1000 || args.queries == 0 {
        return Err(UserError("--chunks must be >= 1000 and --queries > 0".into()).into());
    }
    let load_average_before = load_average();
    let tmp = tempfile::tempdir()?;
    let db = Db::init(tmp.path().join("data"))?;
    let mut spec = Datanet::new("bench");
    spec.chunking.size_bytes = 1 << 16;
    spec.chunking.overlap_bytes = 0;
    db.create_datanet(spec)?;
    let files = write_corpus(tmp.path(), &args.collection, args.chunks)?;
    let options = IngestOptions {
        contributor: Some(Address([0x11; 20])),
        ..IngestOptions::default()
    };
    db.ingest_files("bench", &files, &options, &|_, _| {}, &mut |_| {})?;
    let mut config = provdb::index::IndexConfig::default();
    config.hnsw.m = args.m.unwrap_or(config.hnsw.m);
    config.hnsw.ef_construction = args.ef_construction.unwrap_or(config.hnsw.ef_construction);
    db.configure_index("bench", &config)?;
    let lowrank = match args.vectors.as_str() {
        "lowrank" => true,
        "clusters" => false,
        other => {
            return Err(
                UserError(format!("unknown --vectors '{other}' (lowrank, clusters)")).into(),
            );
        }
    };
    let embedder = Synthetic::new(args.clusters, lowrank);
    let store = db.store();
    let index = db.index("bench")?;
    let (caught, build_text_ms) = timed(|| index.catch_up(store, None, &|_, _, _| {}));
    let caught = caught?;
    let (vectors, build_vectors_ms) =
        timed(|| index.catch_up(store, Some(&embedder), &|_, _, _| {}));
    vectors?;
    eprintln!(
        "indexed {} chunks: text {:.1} s, vectors and graph {:.1} s",
        caught.chunks,
        build_text_ms / 1000.0,
        build_vectors_ms / 1000.0
    );
    // Reopening rebuilds the graph from the vector file (storing the same parameters closes
    // the open index, so the next `index` call opens it afresh).
    let config = index.config();
    drop(index);
    db.configure_index("bench", &config)?;
    let (index, reopen_ms) = timed(|| -> anyhow::Result<_> {
        let index = db.index("bench")?;
        index.catch_up(store, Some(&embedder), &|_, _, _| {})?;
        Ok(index)
    });
    let index = index?;
    eprintln!("reopened in {:.1} s", reopen_ms / 1000.0);

    let mut rng = StdRng::seed_from_u64(99);
    let queries: Vec<Vec<f32>> = (0..args.queries)
        .map(|i| {
            embedder.near(
                rng.random_range(0..args.clusters.max(1)),
                1_000_000 + i as u64,
            )
        })
        .collect();
    let qry_path = args.collection.join("cran.qry");
    let qry_text = fs_err::read_to_string(&qry_path)?;
    let texts: Vec<String> = parse_documents(&qry_text, &qry_path.display().to_string())?
        .into_iter()
        .map(|q| q.text)
        .collect();

    let n = caught.chunks;
    let (truth, exact) = index.with_vectors(|v| -> Result<_, IndexError> {
        let v = v.ok_or_else(|| IndexError::Internal("no vectors".into()))?;
        let mut truth = Vec::new();
        let mut latencies = Vec::new();
        for q in &queries {
            let (top, ms) = timed(|| v.search_exact(q, 10, None));
            truth.push(top);
            latencies.push(ms);
        }
        Ok((truth, timing(latencies)))
    })??;

    let mut graph = Vec::new();
    for ef in [16, 32, 48, 64, 96, 128, 256] {
        let point = index.with_vectors(|v| -> Result<_, IndexError> {
            let v = v.ok_or_else(|| IndexError::Internal("no vectors".into()))?;
            let mut latencies = Vec::new();
            let mut recall_sum = 0.0;
            for (q, t) in queries.iter().zip(&truth) {
                let (top, ms) = timed(|| v.search_graph(q, 10, ef, None));
                recall_sum += recall(t, &top);
                latencies.push(ms);
            }
            let timing = timing(latencies);
            Ok(GraphPoint {
                ef_search: ef,
                recall_at_10: recall_sum / queries.len() as f64,
                qps_vs_exact: timing.qps / exact.qps.max(1e-9),
                timing,
            })
        })??;
        graph.push(point);
    }

    let mut filtered = Vec::new();
    let mut crossover = 0u64;
    for selectivity in [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5] {
        let mut bitmap = RoaringBitmap::new();
        for o in 0..n {
            if rng.random::<f64>() < selectivity {
                bitmap.insert(o);
            }
        }
        let selected = bitmap.len();
        let point = index.with_vectors(|v| -> Result<_, IndexError> {
            let v = v.ok_or_else(|| IndexError::Internal("no vectors".into()))?;
            let (mut exact_ms, mut graph_ms) = (Vec::new(), Vec::new());
            let mut graph_recall = 0.0;
            let mut truths = Vec::new();
            for q in &queries {
                let (t, ms) = timed(|| v.search_exact(q, 10, Some(&bitmap)));
                exact_ms.push(ms);
                let (g, ms) = timed(|| v.search_graph(q, 10, config.hnsw.ef_search, Some(&bitmap)));
                graph_ms.push(ms);
                graph_recall += recall(&t, &g);
                truths.push(t);
            }
            Ok((
                timing(exact_ms),
                timing(graph_ms),
                graph_recall / queries.len() as f64,
                truths,
            ))
        })??;
        let (exact_scan, graph_filtered, graph_recall_at_10, truths) = point;
        if exact_scan.mean_ms <= graph_filtered.mean_ms {
            crossover = crossover.max(selected);
        }
        let mut auto_recall = 0.0;
        for (q, t) in queries.iter().zip(&truths) {
            auto_recall += recall(t, &index.search_vectors(q, 10, &bitmap)?);
        }
        filtered.push(FilteredPoint {
            selectivity,
            selected,
            exact_scan,
            graph_filtered,
            graph_recall_at_10,
            auto_path: if selected <= config.exact_scan_max {
                "exact"
            } else {
                "graph"
            },
            auto_recall_at_10: auto_recall / queries.len() as f64,
        });
    }

    let bm25_options = SearchOptions {
        mode: Mode::Bm25,
        ..SearchOptions::default()
    };
    let mut latencies = Vec::new();
    for i in 0..args.queries {
        let text = &texts[i % texts.len().max(1)];
        let (hits, ms) = timed(|| index.search(text, None, &bm25_options));
        hits?;
        latencies.push(ms);
    }
    let bm25 = timing(latencies);
    let mut latencies = Vec::new();
    let hybrid_options = SearchOptions::default();
    for (i, q) in queries.iter().enumerate() {
        let text = &texts[i % texts.len().max(1)];
        let (hits, ms) = timed(|| index.search(text, Some(q), &hybrid_options));
        hits?;
        latencies.push(ms);
    }
    let hybrid = timing(latencies);

    let default_point = graph.iter().find(|p| p.ef_search == config.hnsw.ef_search);
    let met = default_point.is_some_and(|p| p.recall_at_10 >= 0.95 && p.qps_vs_exact >= 20.0)
        && hybrid.p50_ms < 5.0;
    let report = Report {
        chunks: n,
        vectors: args.vectors.clone(),
        load_average_before,
        load_average_after: load_average(),
        build_text_seconds: build_text_ms / 1000.0,
        build_vectors_seconds: build_vectors_ms / 1000.0,
        reopen_graph_seconds: reopen_ms / 1000.0,
        hnsw: config.hnsw,
        exact,
        graph,
        default_ef_search: config.hnsw.ef_search,
        filtered,
        measured_exact_scan_max: crossover,
        configured_exact_scan_max: config.exact_scan_max,
        bm25,
        hybrid,
        targets: Targets {
            recall_at_10_min: 0.95,
            qps_vs_exact_min: 20.0,
            hybrid_p50_ms_max: 5.0,
            met,
        },
    };
    if args.json {
        return print_json(&report);
    }
    print_text(&report);
    Ok(())
}

fn print_text(r: &Report) {
    println!("vectors: {}", r.vectors);
    println!(
        "{} chunks; load average {} -> {}; build: text {:.1} s, vectors+graph {:.1} s; reopen (graph rebuild) {:.1} s",
        r.chunks,
        r.load_average_before,
        r.load_average_after,
        r.build_text_seconds,
        r.build_vectors_seconds,
        r.reopen_graph_seconds
    );
    println!(
        "exact scan (baseline): {:.2} ms/query, {:.0} QPS",
        r.exact.mean_ms, r.exact.qps
    );
    println!(
        "HNSW M={} ef_construction={}:",
        r.hnsw.m, r.hnsw.ef_construction
    );
    for p in &r.graph {
        println!(
            "  ef_search {:>4}: recall@10 {:.3}, {:.0} QPS = {:.1}x exact",
            p.ef_search, p.recall_at_10, p.timing.qps, p.qps_vs_exact
        );
    }
    println!("filtered (graph with bitmap filter vs exact scan of the bitmap):");
    for f in &r.filtered {
        println!(
            "  {:>5.1}% ({:>6} chunks): exact {:.3} ms, graph {:.3} ms (recall {:.3}); auto path {} recall {:.3}",
            f.selectivity * 100.0,
            f.selected,
            f.exact_scan.mean_ms,
            f.graph_filtered.mean_ms,
            f.graph_recall_at_10,
            f.auto_path,
            f.auto_recall_at_10
        );
    }
    println!(
        "exact scan wins up to {} selected chunks (configured switch-over: {})",
        r.measured_exact_scan_max, r.configured_exact_scan_max
    );
    println!("BM25: {:.0} QPS (p50 {:.2} ms)", r.bm25.qps, r.bm25.p50_ms);
    println!(
        "hybrid (default fusion, no query embedding): p50 {:.2} ms, p99 {:.2} ms",
        r.hybrid.p50_ms, r.hybrid.p99_ms
    );
    println!("targets met: {}", r.targets.met);
}
