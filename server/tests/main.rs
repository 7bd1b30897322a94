//! Tests of the `provdb` binary: exit codes, JSON output, and SIGKILL crash recovery.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

mod adapters;
mod bench_sql;
mod chain;
mod cli;
mod common;
mod crash;
mod index_crash;
mod ledger;
mod ledger_crash;
mod search;
mod tiny_model;
