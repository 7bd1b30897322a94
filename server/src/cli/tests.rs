//! The command line's shape: clap's own consistency checks, and the spellings users type.

use clap::{CommandFactory, Parser};

use super::{Cli, Command};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("provdb").chain(args.iter().copied()))
}

#[test]
fn clap_finds_no_conflict_in_the_command_tree() {
    Cli::command().debug_assert();
}

#[test]
fn json_is_one_global_flag_accepted_before_or_after_the_command() {
    for args in [
        &["--json", "datanet", "list"][..],
        &["datanet", "--json", "list"],
        &["datanet", "list", "--json"],
        &[
            "epoch",
            "proof",
            "0x0000000000000000000000000000000000000001",
            "--json",
        ],
    ] {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(cli.output.json, "{args:?}");
    }
    assert!(!parse(&["datanet", "list"]).unwrap().output.json);
}

#[test]
fn a_benchmark_gets_its_arguments_unchanged_json_included() {
    let cli = parse(&["bench", "ingest", "--json", "--runs", "3"]).unwrap();
    let Command::Bench(args) = cli.command else {
        panic!("not bench: {:?}", cli.command);
    };
    assert_eq!(args.args, ["ingest", "--json", "--runs", "3"]);
    assert!(!cli.output.json, "the global --json took the benchmark's");
}

#[test]
fn the_data_directory_is_global() {
    let cli = parse(&["datanet", "list", "--data", "/tmp/elsewhere"]).unwrap();
    assert_eq!(cli.data_dir.data, std::path::Path::new("/tmp/elsewhere"));
}

#[test]
fn closed_choices_and_numbers_are_checked_by_clap() {
    let refused = |args: &[&str], needle: &str| {
        let message = parse(args).expect_err("refused").to_string();
        assert!(message.contains(needle), "{args:?}: {message}");
    };
    refused(
        &["search", "d", "q", "--mode", "fuzzy"],
        "bm25, vector, hybrid",
    );
    refused(&["ask", "d", "q", "--attribution", "magic"], "cited, loo");
    refused(
        &["ask", "d", "q", "--max-fee", "1.5"],
        "whole number below 2^128",
    );
    refused(&["search", "d", "q", "--fusion", "max"], "weighted, rrf");
    refused(&["sql", "SELECT 1", "--format", "xml"], "table, json, csv");
    refused(
        &["key", "create", "--address", "0x01", "--role", "reader"],
        "address",
    );
    refused(
        &[
            "key",
            "create",
            "--address",
            "0x0000000000000000000000000000000000000001",
            "--role",
            "root",
        ],
        "reader, contributor, curator, admin",
    );
    refused(&["generate", "x", "--adapter", "0xabc:heavy"], "weight");
    refused(&["train", "show", "job-1"], "job id");
    // No caller names its fee: `ask` has no `--fee`.
    refused(&["ask", "d", "q", "--fee", "5"], "--fee");
    parse(&["search", "d", "q", "--fusion", "weighted_sum"]).expect("the long spelling");
    parse(&[
        "ask",
        "d",
        "q",
        "--max-fee",
        "340282366920938463463374607431768211455",
    ])
    .expect("u128::MAX wei");
}
