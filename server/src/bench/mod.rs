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

/// CPU time of this process over all its threads, in seconds (Linux: utime + stime from
/// /proc, in clock ticks of 10 ms); `None` elsewhere.
pub(crate) fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
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
