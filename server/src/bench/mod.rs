//! `provdb bench ...`: each benchmark measures provdb and a baseline in the same run and
//! prints the ratio, so results compare across machines and loads.

mod adapters;
mod answer;
mod chain;
mod embed;
mod generate;
mod ingest;
mod search;
mod sql;
mod sql_data;
mod train;
mod train_check;

use crate::cli::BenchCommand;

pub(crate) fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args),
        BenchCommand::Embed(args) => embed::run(args),
        BenchCommand::Generate(args) => generate::run(args),
        BenchCommand::Search(args) => search::run(args),
        BenchCommand::Answer(args) => answer::run(args),
        BenchCommand::Sql(args) => sql::run(args),
        BenchCommand::Chain(args) => chain::run(args),
        BenchCommand::Adapters(args) => adapters::run(args),
        BenchCommand::Train(args) => train::run(args),
    }
}

/// Peak resident set size of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_mb() -> f64 {
    proc_status_mb("VmHWM:")
}

/// Current resident set size of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

/// A `kB` field of /proc/self/status, in MiB.
fn proc_status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
