//! Secrets off the command line: a chain key given as an argument is visible to every user of
//! the machine (`ps`, `/proc/PID/cmdline`) and stays in shell history, so `provdb chain`
//! refuses `--key` (exit 1, naming the rule and the two ways that remain) and takes the key
//! from `--key-file PATH` or the environment (`PROVDB_CHAIN_KEY`, `PROVDB_CLAIM_KEY`).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// anvil's first development account: a public test key.
const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// A closed port: the commands get past their key and fail at the node.
const NO_NODE: &str = "http://127.0.0.1:9";

fn chain(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provdb"));
    command
        .arg("--data")
        .arg(data)
        .arg("chain")
        .args(args)
        .env_remove("PROVDB_DATA")
        .env_remove("PROVDB_CHAIN_KEY")
        .env_remove("PROVDB_CLAIM_KEY")
        .env_remove("PROVDB_RPC");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn a_key_on_the_command_line_is_refused_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let attempts: [&[&str]; 3] = [
        &["deploy", "--rpc", NO_NODE, "--key", KEY],
        &["sync", "--rpc", NO_NODE, "--key", KEY],
        &["claim", ALICE, "--rpc", NO_NODE, "--key", KEY],
    ];
    for args in attempts {
        let out = chain(&data, args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains("--key is not accepted"), "{text}");
        assert!(text.contains("--key-file PATH"), "{text}");
        assert!(text.contains("PROVDB_C"), "names the variable: {text}");
        assert!(!text.contains(&KEY[2..]), "the key is never echoed: {text}");
    }
    // Even beside a valid key from the environment, --key stays refused.
    let out = chain(
        &data,
        &["sync", "--rpc", NO_NODE, "--key", KEY],
        &[("PROVDB_CHAIN_KEY", KEY)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The help does not offer it.
    let help = Command::new(env!("CARGO_BIN_EXE_provdb"))
        .args(["chain", "sync", "--help"])
        .output()
        .unwrap();
    let help = stdout(&help);
    assert!(help.contains("--key-file"), "{help}");
    assert!(!help.contains("--key <"), "{help}");
}

#[test]
fn keys_come_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    ok(provdb(&data, &["init"]));
    let file = dir.path().join("operator.key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let file = file.to_str().unwrap();
    let key_errors = ["private key", "--key-file", "not accepted"];
    // From the file, or from the environment: the key is taken and the command goes on to
    // the node, which is not there (a failure of its own, not the key's).
    let from_file = chain(
        &data,
        &["deploy", "--rpc", NO_NODE, "--key-file", file],
        &[],
    );
    let from_env = chain(
        &data,
        &["deploy", "--rpc", NO_NODE],
        &[("PROVDB_CHAIN_KEY", KEY)],
    );
    for out in [from_file, from_env] {
        let text = stderr(&out);
        assert!(!out.status.success(), "no node, no deploy: {text}");
        assert!(
            key_errors.iter().all(|e| !text.contains(e)),
            "the key was accepted: {text}"
        );
        assert!(
            text.contains("127.0.0.1:9"),
            "it failed at the node: {text}"
        );
    }
    // No key: exit 1 naming both ways. A malformed key: exit 1 naming where it came from,
    // without echoing it.
    let none = chain(&data, &["deploy", "--rpc", NO_NODE], &[]);
    assert_eq!(none.status.code(), Some(1), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("pass --key-file PATH or set PROVDB_CHAIN_KEY"),
        "{}",
        stderr(&none)
    );
    let bad = chain(
        &data,
        &["deploy", "--rpc", NO_NODE],
        &[("PROVDB_CHAIN_KEY", "0xnot-a-key-secret")],
    );
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("PROVDB_CHAIN_KEY does not hold a private key"));
    assert!(!stderr(&bad).contains("not-a-key-secret"));
    let claim = chain(
        &data,
        &["claim", ALICE, "--rpc", NO_NODE],
        &[("PROVDB_CHAIN_KEY", KEY)],
    );
    assert_eq!(claim.status.code(), Some(1), "{}", stderr(&claim));
    assert!(
        stderr(&claim).contains("PROVDB_CLAIM_KEY"),
        "a claim's sender has its own variable: {}",
        stderr(&claim)
    );
}
