//! The `provdb` binary as a library: command line and HTTP server over the embedded API.
//!
//! `main.rs` only calls [`main`]; the library exists so that in-process callers (the fuzz
//! harness, `fuzz/harness`) drive the real HTTP router through [`api_router`] without a socket.
//! Exit codes: 0 success, 1 user error (message on stderr), 2 internal or IO error.

mod cli;
mod commands;
mod http;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::UserError;

pub use http::{ServeLimits, api_router};

/// Parses the command line, runs the command, and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            // Printing usage can only fail on a closed stdout; nothing useful is left to do.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<provdb::Error>() {
            return if e.is_user_error() { 1 } else { 2 };
        }
        if let Some(e) = cause.downcast_ref::<provdb::inference::InferenceError>() {
            return if e.is_user_error() { 1 } else { 2 };
        }
        if let Some(e) = cause.downcast_ref::<provdb::index::IndexError>() {
            return if e.is_user_error() { 1 } else { 2 };
        }
        if let Some(e) = cause.downcast_ref::<provdb_chain::ChainError>() {
            return if e.is_user_error() { 1 } else { 2 };
        }
        if cause.downcast_ref::<UserError>().is_some() {
            return 1;
        }
    }
    2
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = cli.data;
    match cli.command {
        Command::Init => commands::init(&data),
        Command::Datanet(command) => commands::datanet::run(&data, command),
        Command::Ingest(args) => commands::ingest::run(&data, args),
        Command::Records(args) => commands::records::list(&data, args),
        Command::Record(command) => commands::records::change(&data, command),
        Command::Search(args) => commands::search::run(&data, args),
        Command::Index(command) => commands::index::run(&data, command),
        Command::Eval(command) => commands::eval::run(command),
        Command::ConvertSmart(args) => commands::demo::convert_smart(args),
        Command::Embed(args) => commands::embed::run(args),
        Command::Generate(args) => commands::generate::run(&data, args),
        Command::Adapter(command) => commands::adapter::run(&data, command),
        Command::Sql(args) => commands::sql::run(&data, args),
        Command::Ask(args) => commands::ask::run(&data, args),
        Command::Ledger(command) => commands::ledger::run(&data, command),
        Command::Audit(args) => commands::ledger::audit(&data, args),
        Command::Epoch(command) => commands::epoch::run(&data, command),
        Command::Chain(command) => commands::chain::run(&data, command),
        Command::Serve(args) => commands::serve::run(&data, args),
        Command::Key(command) => commands::key::run(&data, command),
        Command::Train(command) => commands::train::run(&data, command),
        Command::Demo(args) => commands::demo::run(&data, args),
        Command::Bench(args) => commands::bench::run(args.args),
    }
}
