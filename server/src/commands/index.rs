//! `provdb index config|rebuild NAME`: per-Datanet index parameters and rebuilds.

use std::path::Path;

use provdb::Db;

use crate::cli::{IndexCommand, IndexConfigArgs};
use crate::commands::load_embedder;
use crate::output::print_json;

pub(crate) fn run(data: &Path, command: IndexCommand) -> anyhow::Result<()> {
    match command {
        IndexCommand::Config(args) => config(data, args),
        IndexCommand::Rebuild { name, model } => {
            let mut db = Db::open(data)?;
            db.datanet_info(&name)?;
            if let Some(embedder) = load_embedder(model.as_deref())? {
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

fn config(data: &Path, args: IndexConfigArgs) -> anyhow::Result<()> {
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
    if args.json {
        return print_json(&config);
    }
    let h = config.hnsw;
    println!(
        "{}: M {}, ef_construction {}, ef_search {}, exact scan up to {} chunks, fusion depth {}",
        args.name, h.m, h.ef_construction, h.ef_search, config.exact_scan_max, config.fusion_depth
    );
    Ok(())
}
