//! `provdb search NAME TEXT`: hits with their chunk text, scores, ranks and contributors.

use std::path::Path;

use clap::Args;
use provdb::{Db, Filters, Fusion, SearchMode, SearchOptions, Weights};
use serde::Serialize;

use crate::cli::options::{CallerArgs, EmbedderArgs, FusionArg, SearchModeArg, StatusArg};
use crate::output::{print_json, print_table};

/// `provdb search`.
#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Datanet name.
    name: String,
    /// The query.
    text: String,
    /// Hits wanted.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Which retrievers answer.
    #[arg(long, value_enum, default_value_t = SearchModeArg::Hybrid)]
    mode: SearchModeArg,
    /// Also return records of these statuses (default: approved only).
    #[arg(long = "status", value_enum)]
    statuses: Vec<StatusArg>,
    /// Only return records under these licenses.
    #[arg(long = "license")]
    licenses: Vec<String>,
    #[command(flatten)]
    reader: CallerArgs,
    #[command(flatten)]
    fusion: FusionArgs,
    #[command(flatten)]
    embedder: EmbedderArgs,
}

/// Options shared by `search` and `eval`: how the retrievers are combined.
#[derive(Debug, Args)]
pub(crate) struct FusionArgs {
    /// Fusion of hybrid mode: weighted (min-max-normalised weighted sum) or rrf.
    #[arg(long, value_enum, default_value_t = FusionArg::Weighted)]
    pub(crate) fusion: FusionArg,
    /// RRF constant k.
    #[arg(long, default_value_t = 60.0)]
    rrf_k: f32,
    /// Weight of BM25 in hybrid mode (default 1).
    #[arg(long)]
    bm25_weight: Option<f32>,
    /// Weight of the vector retriever in hybrid mode (default 2 for weighted, 1 for rrf).
    #[arg(long)]
    vector_weight: Option<f32>,
}

impl FusionArgs {
    /// Search options for `k` hits in `mode` with this fusion (callers add filters).
    pub(crate) fn options(&self, k: usize, mode: SearchMode) -> anyhow::Result<SearchOptions> {
        let method = Fusion::from(self.fusion);
        let defaults = Weights::default_for(method);
        let options = SearchOptions {
            k,
            mode,
            fusion: method,
            rrf_k: self.rrf_k,
            weights: Weights {
                bm25: self.bm25_weight.unwrap_or(defaults.bm25),
                vector: self.vector_weight.unwrap_or(defaults.vector),
            },
            filters: Filters::default(),
        };
        options.validate()?;
        Ok(options)
    }
}

#[derive(Serialize)]
struct Output<'a> {
    hits: &'a [provdb::SearchHit],
}

/// With `--json`, prints `{"hits":[{"chunk_id","record_id","contributor","score","text",...}]}`.
pub(crate) fn run(data: &Path, json: bool, args: SearchArgs) -> anyhow::Result<()> {
    let mut options = args.fusion.options(args.k, args.mode.into())?;
    options.filters.statuses = args.statuses.iter().map(|&s| s.into()).collect();
    options.filters.licenses = args.licenses.clone();
    options.validate()?;
    let mut db = Db::open(data)?;
    // Check the Datanet before loading a model: a typo should not cost a model load.
    db.datanet_info(&args.name)?;
    if options.mode != SearchMode::Bm25
        && let Some(embedder) = args.embedder.load()?
    {
        db = db.with_embedder(embedder);
    }
    let hits = db.search_as(&args.name, &args.text, &options, args.reader.caller())?;
    if json {
        return print_json(&Output { hits: &hits });
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .enumerate()
        .map(|(i, hit)| {
            let snippet: String = hit.text.chars().take(80).collect();
            vec![
                (i + 1).to_string(),
                format!("{:.4}", hit.score),
                hit.chunk_id.to_string(),
                hit.contributor.to_string(),
                snippet.replace('\n', " "),
            ]
        })
        .collect();
    print_table(&["rank", "score", "chunk", "contributor", "text"], &rows);
    Ok(())
}
