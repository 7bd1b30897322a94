//! One module per command group: its clap arguments beside the `run` that reads them. A
//! command prints text, or one JSON document under the global `--json`; it talks to the
//! database only through the root crate's API and shares JSON shapes with the HTTP API only
//! through `crate::views`.

pub(crate) mod account;
pub(crate) mod adapter;
pub(crate) mod ask;
pub(crate) mod bench;
pub(crate) mod chain;
pub(crate) mod chain_key;
mod chain_verify;
pub(crate) mod datanet;
pub(crate) mod demo;
pub(crate) mod embed;
pub(crate) mod epoch;
pub(crate) mod eval;
pub(crate) mod generate;
pub(crate) mod index;
pub(crate) mod ingest;
pub(crate) mod key;
pub(crate) mod ledger;
pub(crate) mod price;
pub(crate) mod records;
pub(crate) mod search;
pub(crate) mod serve;
pub(crate) mod sql;
pub(crate) mod train;

use std::path::Path;

/// `provdb init`.
pub(crate) fn init(data: &Path) -> anyhow::Result<()> {
    provdb::Db::init(data)?;
    println!("initialised provdb database in {}", data.display());
    Ok(())
}

/// Sets `CANDLE_NUM_THREADS` (the size of candle's element-wise pool, read once when candle
/// first needs it) unless the caller set it; what is in force.
pub(crate) fn set_candle_threads(threads: usize) -> String {
    if let Some(set) = std::env::var_os("CANDLE_NUM_THREADS") {
        return set.to_string_lossy().into_owned();
    }
    // SAFETY: called first thing in the command, on the main thread, before this process
    // has started any other thread that could read or write the environment.
    unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
    threads.to_string()
}
