//! SIGKILL while the index catches up: after reopening, search results equal those of an
//! index rebuilt from storage alone. A trial counts as killed mid-work when the index it left
//! on disk (catalog, BM25 and vectors, read before anything catches up) is neither empty nor
//! whole.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use provdb::index::vectors::VectorIndex;
use provdb::index::{Embed, HnswParams};
use provdb::{Datanet, Db, IngestOptions, SearchHit, SearchMode, SearchOptions, SentenceEmbedder};
use rand::Rng;

use crate::common::ALICE;
use crate::tiny_model::{WORDS, write_tiny_model};
use crate::trials::{Minimum, Report, quarter, trials};

const RECORDS: usize = 6000;
const QUERIES: [&str; 3] = [
    "shock wave wing",
    "boundary layer heat plate",
    "jet cone flow lift",
];

/// A database with every record stored and no index yet.
fn stored_only(dir: &Path) -> PathBuf {
    let data = dir.join("template");
    let db = Db::init(&data).unwrap();
    db.create_datanet(Datanet::new("crash")).unwrap();
    let lines: Vec<String> = (0..RECORDS)
        .map(|i| {
            let words: Vec<&str> = (0..5)
                .map(|j| WORDS[(i * 7 + j * (i % 5 + 1)) % WORDS.len()])
                .collect();
            format!(
                "{{\"text\":\"{} record {i}\",\"contributor\":\"{ALICE}\"}}",
                words.join(" ")
            )
        })
        .collect();
    let input = dir.join("records.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    db.ingest_file("crash", &input, &IngestOptions::default())
        .unwrap();
    data
}

fn spawn_indexing(data: &Path, model: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(["search", "crash", "wing", "--mode", "hybrid", "--model"])
        .arg(model)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The chunks embedded in the vector file a killed run left (the vectors load only when a
/// search needs them, so the index's own coverage would not show them before catching up).
fn embedded_on_disk(data: &Path, embedder: &SentenceEmbedder) -> u32 {
    let path = data.join("index").join("crash").join("vectors.bin");
    if !path.exists() {
        return 0; // killed before the vector stage began
    }
    let params = HnswParams::default();
    VectorIndex::open(&path, embedder.model_id(), embedder.dim(), params)
        .unwrap()
        .len()
}

fn results(db: &Db) -> Vec<Vec<SearchHit>> {
    let mut out = Vec::new();
    for query in QUERIES {
        for mode in [SearchMode::Bm25, SearchMode::Vector, SearchMode::Hybrid] {
            let options = SearchOptions {
                k: 20,
                mode,
                ..SearchOptions::default()
            };
            out.push(db.search("crash", query, &options).unwrap());
        }
    }
    out
}

fn assert_same(a: &[Vec<SearchHit>], b: &[Vec<SearchHit>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        let ids = |hits: &[SearchHit]| hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>();
        assert_eq!(ids(x), ids(y));
        for (p, q) in x.iter().zip(y) {
            assert!(
                (p.score - q.score).abs() < 1e-5,
                "{} vs {}",
                p.score,
                q.score
            );
        }
    }
}

#[test]
fn sigkill_during_indexing_then_reopen_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tiny_model(&model);
    let template = stored_only(dir.path());
    let embedder = Arc::new(SentenceEmbedder::load(&model).unwrap());

    let full = dir.path().join("full");
    crate::common::copy_dir(&template, &full);
    let started = Instant::now();
    assert!(spawn_indexing(&full, &model).wait().unwrap().success());
    let full_run = started.elapsed();
    let db = Db::open(&full).unwrap().with_embedder(embedder.clone());
    let reference = results(&db);
    assert!(reference.iter().all(|hits| hits.len() == 20));
    drop(db);

    let mut rng = rand::rng();
    let mut report = Report::new("indexing", trials(6));
    for trial in 0..report.trials {
        let data = dir.path().join(format!("trial-{trial}"));
        crate::common::copy_dir(&template, &data);
        let mut child = spawn_indexing(&data, &model);
        std::thread::sleep(Duration::from_millis(
            rng.random_range(0..full_run.as_millis().max(2) as u64),
        ));
        child.kill().unwrap(); // SIGKILL on Unix
        let _ = child.wait();
        let embedded = embedded_on_disk(&data, &embedder);
        let db = Db::open(&data).unwrap().with_embedder(embedder.clone());
        // Opening reads the catalog and BM25 as the kill left them; nothing has caught up yet.
        let (catalog, bm25, _) = db.index("crash").unwrap().coverage().unwrap();
        let coverage = (catalog, bm25, embedded);
        let total = RECORDS as u32;
        if coverage != (0, 0, 0) && coverage != (total, total, total) {
            report.interrupted += 1;
        }
        eprintln!("trial {trial}: the kill left (catalog, BM25, vectors) at {coverage:?}");
        let recovered = results(&db);
        db.rebuild_index("crash", &|_, _, _| {}).unwrap();
        let rebuilt = results(&db);
        assert_same(&recovered, &rebuilt);
        assert_same(&recovered, &reference);
        report.whole_checked += recovered.len() as u64;
        drop(db);
        std::fs::remove_dir_all(&data).unwrap();
    }
    // Indexing acknowledges nothing: what it leaves is compared with a rebuild instead.
    let minimum = quarter(report.trials);
    report.finish(Minimum {
        interrupted: minimum,
        acknowledged_checked: 0,
    });
}
