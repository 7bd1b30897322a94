//! `provdb index config|rebuild NAME`: per-Datanet index parameters and rebuilds.

use std::path::Path;

use clap::{Args, Subcommand};
use provdb::Db;

use crate::cli::options::EmbedderArgs;
use crate::output::print_json;

/// `provdb index`.
#[derive(Debug, Subcommand)]
pub(crate) enum IndexCommand {
    /// Show the parameters; with options, change them (the graph is rebuilt from the stored
    /// vectors, nothing is re-embedded).
    Config(IndexConfigArgs),
    /// Delete the index files and rebuild them from storage.
    Rebuild {
        /// Datanet name.
        name: String,
        #[command(flatten)]
        embedder: EmbedderArgs,
    },
}

/// `provdb index config`.
#[derive(Debug, Args)]
pub(crate) struct IndexConfigArgs {
    /// Datanet name.
    name: String,
    /// HNSW neighbours per node (M).
    #[arg(long)]
    m: Option<usize>,
    /// HNSW candidate list while building.
    #[arg(long)]
    ef_construction: Option<usize>,
    /// HNSW candidate list while searching.
    #[arg(long)]
    ef_search: Option<usize>,
    /// Filtered vector searches selecting at most this many chunks scan them exactly.
    #[arg(long)]
    exact_scan_max: Option<u64>,
    /// Candidates per retriever in hybrid mode.
    #[arg(long)]
    fusion_depth: Option<usize>,
}

pub(crate) fn run(data: &Path, json: bool, command: IndexCommand) -> anyhow::Result<()> {
    match command {
        IndexCommand::Config(args) => config(data, json, args),
        IndexCommand::Rebuild { name, embedder } => {
            let mut db = Db::open(data)?;
            db.datanet_info(&name)?;
            if let Some(embedder) = embedder.load()? {
                db = db.with_embedder(embedder);
            }
            let caught = db.rebuild_index(&name, &|_, _, _| {})?;
            println!(
                "rebuilt the index of {name}: {} chunks ({} embedded), sequence {}",
                caught.chunks, caught.vector_chunks, caught.sequence
            );
            Ok(())
        }
    }
}

fn config(data: &Path, json: bool, args: IndexConfigArgs) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let mut config = db.index(&args.name)?.config();
    let before = config;
    if let Some(m) = args.m {
        config.hnsw.m = m;
    }
    if let Some(ef) = args.ef_construction {
        config.hnsw.ef_construction = ef;
    }
    if let Some(ef) = args.ef_search {
        config.hnsw.ef_search = ef;
    }
    if let Some(max) = args.exact_scan_max {
        config.exact_scan_max = max;
    }
    if let Some(depth) = args.fusion_depth {
        config.fusion_depth = depth;
    }
    if config != before {
        db.configure_index(&args.name, &config)?;
    }
    if json {
        return print_json(&config);
    }
    let h = config.hnsw;
    println!(
        "{}: M {}, ef_construction {}, ef_search {}, exact scan up to {} chunks, fusion depth {}",
        args.name, h.m, h.ef_construction, h.ef_search, config.exact_scan_max, config.fusion_depth
    );
    Ok(())
}
