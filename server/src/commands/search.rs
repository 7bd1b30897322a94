//! `provdb search NAME TEXT`: hits with their chunk text, scores, ranks and contributors.

use std::path::Path;

use provdb::{Address, Caller, Db, Filters, Fusion, SearchOptions, Status, Weights};
use serde::Serialize;

use crate::cli::{FusionArgs, SearchArgs};
use crate::commands::load_embedder;
use crate::output::{parse_arg, print_json, print_table};

/// Search options from the command line (k, mode and fusion; filters are added by callers).
pub(crate) fn options(k: usize, mode: &str, fusion: &FusionArgs) -> anyhow::Result<SearchOptions> {
    let method: Fusion = parse_arg(&fusion.fusion, "fusion")?;
    let defaults = Weights::default_for(method);
    let options = SearchOptions {
        k,
        mode: parse_arg(mode, "search mode")?,
        fusion: method,
        rrf_k: fusion.rrf_k,
        weights: Weights {
            bm25: fusion.bm25_weight.unwrap_or(defaults.bm25),
            vector: fusion.vector_weight.unwrap_or(defaults.vector),
        },
        filters: Filters::default(),
    };
    options.validate()?;
    Ok(options)
}

#[derive(Serialize)]
struct Output<'a> {
    hits: &'a [provdb::SearchHit],
}

pub(crate) fn run(data: &Path, args: SearchArgs) -> anyhow::Result<()> {
    let mut options = options(args.k, &args.mode, &args.fusion)?;
    for status in &args.statuses {
        options
            .filters
            .statuses
            .push(parse_arg::<Status>(status, "status")?);
    }
    options.filters.licenses = args.licenses.clone();
    options.validate()?;
    let reader = match args.reader.as_deref() {
        Some(a) => Caller::address(parse_arg::<Address>(a, "reader address")?),
        None => Caller::anonymous(),
    };
    let mut db = Db::open(data)?;
    // Check the Datanet before loading a model: a typo should not cost a model load.
    db.datanet_info(&args.name)?;
    if options.mode != provdb::SearchMode::Bm25
        && let Some(embedder) = load_embedder(args.fusion.model.as_deref())?
    {
        db = db.with_embedder(embedder);
    }
    let hits = db.search_as(&args.name, &args.text, &options, reader)?;
    if args.json {
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
