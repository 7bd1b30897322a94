//! `provdb eval ir --collection DIR`: loads a SMART collection into a fresh Datanet of a
//! temporary database, indexes it, and reports nDCG@10, recall@100 and MRR@10 per mode.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use provdb::eval::{Metrics, SweepPoint, evaluate, load_collection, sweep, sweep_grid};
use provdb::{Datanet, Db, IngestOptions, SearchMode};
use serde::Serialize;

use crate::cli::options::EmbedderArgs;
use crate::commands::search::FusionArgs;
use crate::output::{UserError, print_json, print_table, progress};

/// `provdb eval`.
#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// nDCG@10, recall@100 and MRR@10 of each mode on a SMART collection, loaded into a
    /// fresh Datanet in a temporary database.
    Ir(EvalIrArgs),
}

/// `provdb eval ir`.
#[derive(Debug, Args)]
pub(crate) struct EvalIrArgs {
    /// Collection directory (cran.all.1400/cran.qry/cranqrel or *.ALL/*.QRY/*.REL).
    #[arg(long)]
    collection: PathBuf,
    #[command(flatten)]
    fusion: FusionArgs,
    #[command(flatten)]
    embedder: EmbedderArgs,
    /// Also score a grid of hybrid settings (RRF k x weights, weighted sums), fused from one
    /// BM25 and one vector list per query.
    #[arg(long)]
    sweep: bool,
}

#[derive(Serialize)]
struct Report {
    collection: String,
    documents: usize,
    judged_queries: usize,
    chunks: u32,
    index_seconds: f64,
    fusion: &'static str,
    rrf_k: f32,
    weights: [f32; 2],
    modes: BTreeMap<&'static str, Metrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sweep: Vec<SweepPoint>,
}

pub(crate) fn run(json: bool, command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Ir(args) => ir(json, args),
    }
}

fn ir(json: bool, args: EvalIrArgs) -> anyhow::Result<()> {
    let base = args.fusion.options(10, SearchMode::Hybrid)?;
    let collection = load_collection(&args.collection)?;
    let embedder = args.embedder.load()?.ok_or_else(|| {
        UserError("no embedder model: run scripts/fetch-models.sh or pass --model DIR".into())
    })?;
    let tmp = tempfile::tempdir()?;
    let db = Db::init(tmp.path().join("data"))?.with_embedder(embedder);
    db.create_datanet(Datanet::new("eval"))?;
    let input = tmp.path().join("documents.jsonl");
    provdb::demo::write_signed_jsonl(&collection.documents, "eval", &input)?;
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
        fusion: args.fusion.fusion.as_str(),
        rrf_k: base.rrf_k,
        weights: [base.weights.bm25, base.weights.vector],
        modes,
        sweep,
    };
    if json {
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
