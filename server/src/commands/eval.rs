//! `provdb eval ir --collection DIR`: loads a SMART collection into a fresh Datanet of a
//! temporary database, indexes it, and reports nDCG@10, recall@100 and MRR@10 per mode.

use std::collections::BTreeMap;
use std::time::Instant;

use provdb::eval::{Metrics, SweepPoint, evaluate, load_collection, sweep, sweep_grid};
use provdb::{Datanet, Db, IngestOptions, SearchMode};
use serde::Serialize;

use crate::cli::{EvalCommand, EvalIrArgs};
use crate::commands::load_embedder;
use crate::commands::search::options;
use crate::output::{UserError, print_json, print_table, progress};

#[derive(Serialize)]
struct Report {
    collection: String,
    documents: usize,
    judged_queries: usize,
    chunks: u32,
    index_seconds: f64,
    fusion: String,
    rrf_k: f32,
    weights: [f32; 2],
    modes: BTreeMap<&'static str, Metrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sweep: Vec<SweepPoint>,
}

pub(crate) fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Ir(args) => ir(args),
    }
}

fn ir(args: EvalIrArgs) -> anyhow::Result<()> {
    let base = options(10, "hybrid", &args.fusion)?;
    let collection = load_collection(&args.collection)?;
    let embedder = load_embedder(args.fusion.model.as_deref())?.ok_or_else(|| {
        UserError("no embedder model: run scripts/fetch-models.sh or pass --model DIR".into())
    })?;
    let tmp = tempfile::tempdir()?;
    let db = Db::init(tmp.path().join("data"))?.with_embedder(embedder);
    db.create_datanet(Datanet::new("eval"))?;
    let input = tmp.path().join("documents.jsonl");
    provdb::demo::write_signed_jsonl(&collection.documents, &input)?;
    db.ingest_file("eval", &input, &IngestOptions::default())?;
    let started = Instant::now();
    let bar = progress("index");
    let caught = db.catch_up_index("eval", &|_, done, _| bar.set_position(done));
    bar.finish_and_clear();
    let caught = caught?;
    let index_seconds = started.elapsed().as_secs_f64();
    let mut modes = BTreeMap::new();
    for mode in [SearchMode::Bm25, SearchMode::Vector, SearchMode::Hybrid] {
        let options = provdb::SearchOptions {
            mode,
            ..base.clone()
        };
        modes.insert(mode.as_str(), evaluate(&db, "eval", &collection, &options)?);
    }
    let sweep = if args.sweep {
        sweep(&db, "eval", &collection, &sweep_grid())?
    } else {
        Vec::new()
    };
    let report = Report {
        collection: args.collection.display().to_string(),
        documents: collection.documents.len(),
        judged_queries: collection
            .queries
            .iter()
            .filter(|(n, _)| collection.judgments.contains_key(n))
            .count(),
        chunks: caught.chunks,
        index_seconds,
        fusion: args.fusion.fusion.clone(),
        rrf_k: base.rrf_k,
        weights: [base.weights.bm25, base.weights.vector],
        modes,
        sweep,
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "{}: {} documents, {} chunks, {} judged queries (indexed in {:.1} s)",
        report.collection, report.documents, report.chunks, report.judged_queries, index_seconds
    );
    let rows: Vec<Vec<String>> = report
        .modes
        .iter()
        .map(|(mode, m)| {
            vec![
                mode.to_string(),
                format!("{:.4}", m.ndcg_at_10),
                format!("{:.4}", m.recall_at_100),
                format!("{:.4}", m.mrr_at_10),
            ]
        })
        .collect();
    print_table(&["mode", "nDCG@10", "recall@100", "MRR@10"], &rows);
    if !report.sweep.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = report
            .sweep
            .iter()
            .map(|p| {
                vec![
                    p.fusion.to_string(),
                    format!("{}", p.rrf_k),
                    format!("{}:{}", p.bm25_weight, p.vector_weight),
                    format!("{:.4}", p.metrics.ndcg_at_10),
                    format!("{:.4}", p.metrics.recall_at_100),
                    format!("{:.4}", p.metrics.mrr_at_10),
                ]
            })
            .collect();
        print_table(
            &[
                "fusion",
                "rrf_k",
                "bm25:vector",
                "nDCG@10",
                "recall@100",
                "MRR@10",
            ],
            &rows,
        );
    }
    Ok(())
}
