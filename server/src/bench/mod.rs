//! `provdb bench ...`: each benchmark measures provdb and a baseline in the same run and
//! prints the ratio, so results compare across machines and loads.

mod embed;
mod generate;
mod ingest;

use crate::cli::BenchCommand;

pub(crate) fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args),
        BenchCommand::Embed(args) => embed::run(args),
        BenchCommand::Generate(args) => generate::run(args),
    }
}
