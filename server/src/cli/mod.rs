//! The command line as clap parses it: the global options and the list of commands. Each
//! command's own arguments sit beside the code that reads them, in `crate::commands`; option
//! groups several commands share are in [`options`].

use clap::{Args, Parser, Subcommand};

pub(crate) mod options;

use crate::commands::account::AccountCommand;
use crate::commands::adapter::AdapterCommand;
use crate::commands::ask::AskArgs;
use crate::commands::chain::ChainCommand;
use crate::commands::datanet::DatanetCommand;
use crate::commands::demo::{ConvertSmartArgs, DemoArgs};
use crate::commands::embed::EmbedArgs;
use crate::commands::epoch::EpochCommand;
use crate::commands::eval::EvalCommand;
use crate::commands::generate::GenerateArgs;
use crate::commands::index::IndexCommand;
use crate::commands::ingest::IngestArgs;
use crate::commands::key::KeyCommand;
use crate::commands::ledger::{AuditArgs, LedgerCommand};
use crate::commands::price::PriceCommand;
use crate::commands::records::{RecordCommand, RecordsArgs};
use crate::commands::search::SearchArgs;
use crate::commands::serve::ServeArgs;
use crate::commands::sql::SqlArgs;
use crate::commands::train::TrainCommand;
use options::{DataDirArgs, OutputArgs};

/// provdb: a database whose records know their contributors, and whose answers pay them.
#[derive(Debug, Parser)]
#[command(name = "provdb", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) data_dir: DataDirArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an empty database in the data directory.
    Init,
    /// Create, list and show Datanets.
    #[command(subcommand)]
    Datanet(DatanetCommand),
    /// Ingest JSONL, CSV or Parquet files into a Datanet; each file is all or nothing.
    Ingest(IngestArgs),
    /// List a Datanet's records with their provenance columns.
    Records(RecordsArgs),
    /// Change a record's status or remove it.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Search a Datanet: BM25, vectors or both fused.
    Search(SearchArgs),
    /// Show or change a Datanet's index parameters, or rebuild its index from storage.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Evaluate retrieval quality on a test collection with relevance judgments.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Convert a SMART collection (Cranfield, ADI) into signed JSONL records (demo keys).
    ConvertSmart(ConvertSmartArgs),
    /// Embed texts with the sentence embedder (384-d unit vectors for all-MiniLM-L6-v2).
    Embed(EmbedArgs),
    /// Generate text with the LLaMA-family model, streaming tokens to stdout.
    Generate(GenerateArgs),
    /// Run a SQL query over the Datanets the caller may read.
    Sql(SqlArgs),
    /// Add, list and remove LoRA adapters (PEFT folders) served over the generator.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// Answer a question from Datanets with verified citations, and record who is paid.
    Ask(AskArgs),
    /// Verify the attribution ledger or set its fee policy.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Who was paid what: totals per account, or one account's entries.
    Audit(AuditArgs),
    /// List prices, or set a Datanet's (its owner), a model's (an admin) or an adapter's.
    #[command(subcommand)]
    Price(PriceCommand),
    /// Callers' prepaid accounts: show one, credit it off-chain (an admin), refund it.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Close the open ledger entries into an epoch (Merkle root of cumulative balances), list
    /// epochs, print an account's proof.
    #[command(subcommand)]
    Epoch(EpochCommand),
    /// Deploy the contracts to an EVM chain, sync closed epochs and ingest batches to them,
    /// compare local and on-chain state, claim an account's balance.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// Serve the HTTP API (REST, SQL, OpenAI-compatible chat with citations), the web UI and
    /// Prometheus metrics.
    Serve(ServeArgs),
    /// Make, list and revoke API keys for `provdb serve`.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Fine-tune LoRA adapters on Datanet records (the Model Factory): create, list, show,
    /// events, resume, publish.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Run the demo: ingest the signed Cranfield Datanet and print its stats.
    Demo(DemoArgs),
    /// Benchmarks that print ratios against a baseline measured in the same run (runs the
    /// `provdb-bench` binary beside this one; `provdb bench --help` lists them).
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
}

/// `provdb bench ...`: everything after `bench`, for `provdb-bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The benchmark and its options, passed to `provdb-bench` unchanged.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub(crate) args: Vec<std::ffi::OsString>,
}

#[cfg(test)]
mod tests;
