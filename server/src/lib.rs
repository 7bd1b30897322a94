//! The `provdb` binary as a library: command line and HTTP server over the embedded API.
//!
//! `main.rs` only calls [`main`]; the library exists so that in-process callers (the fuzz
//! harness, `fuzz/harness`) drive the real HTTP router through [`api_router`] without a socket.
//! Exit codes: 0 success, 1 user error (message on stderr), 2 internal or IO error, read from
//! the error's kind (`error_kind`), as the HTTP statuses are.
//!
//! `cli` is the command line's top level, `commands` one module per command (its arguments
//! and its `run`), `http` the server; `commands` and `http` share only the root crate's API
//! and the JSON shapes in `views`.

mod cli;
mod commands;
mod error_kind;
mod http;
mod output;
mod views;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

pub use error_kind::{Classify, ErrorKind, kind_of};
pub use http::{ServeLimits, api_router};
pub use output::UserError;

/// Parses the command line, runs the command, and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    run_command_line(run)
}

/// The life of a command-line program of provdb's (`provdb`, `provdb-bench`): parses `C` from
/// the arguments (usage errors exit 1, `--help` and `--version` 0), runs it, and exits 0, or
/// prints the error and exits with its kind's code (1 the user's mistake, 2 the rest).
pub fn run_command_line<C: Parser>(run: impl FnOnce(C) -> anyhow::Result<()>) -> ExitCode {
    let cli = match C::try_parse() {
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
            ExitCode::from(kind_of(&e).exit_code())
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = cli.data_dir.data.as_path();
    let json = cli.output.json;
    match cli.command {
        Command::Init => commands::init(data),
        Command::Datanet(command) => commands::datanet::run(data, json, command),
        Command::Ingest(args) => commands::ingest::run(data, json, args),
        Command::Records(args) => commands::records::list(data, json, args),
        Command::Record(command) => commands::records::change(data, command),
        Command::Search(args) => commands::search::run(data, json, args),
        Command::Index(command) => commands::index::run(data, json, command),
        Command::Eval(command) => commands::eval::run(json, command),
        Command::ConvertSmart(args) => commands::demo::convert_smart(args),
        Command::Embed(args) => commands::embed::run(json, args),
        Command::Generate(args) => commands::generate::run(data, json, args),
        Command::Adapter(command) => commands::adapter::run(data, json, command),
        Command::Sql(args) => commands::sql::run(data, json, args),
        Command::Ask(args) => commands::ask::run(data, json, args),
        Command::Ledger(command) => commands::ledger::run(data, json, command),
        Command::Audit(args) => commands::ledger::audit(data, json, args),
        Command::Price(command) => commands::price::run(data, json, command),
        Command::Account(command) => commands::account::run(data, json, command),
        Command::Epoch(command) => commands::epoch::run(data, json, command),
        Command::Chain(command) => commands::chain::run(data, json, command),
        Command::Serve(args) => commands::serve::run(data, args),
        Command::Key(command) => commands::key::run(data, json, command),
        Command::Train(command) => commands::train::run(data, json, command),
        Command::Demo(args) => commands::demo::run(data, args),
        Command::Bench(args) => commands::bench::run(args.args),
    }
}
