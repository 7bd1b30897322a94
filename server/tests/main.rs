//! Tests of the `provdb` binary: exit codes, JSON output, SIGKILL crash recovery, and the
//! HTTP server (`provdb serve`) with its web UI.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

mod adapters;
mod anvil;
mod chain;
mod chain_conservation;
mod chain_deposits;
mod chain_erc20;
mod chain_tls;
mod chain_x402;
mod cli;
mod common;
mod faults_disk;
mod faults_rpc;
mod faults_serving;
mod http_limits;
mod http_load;
mod http_openai;
mod http_roles;
mod http_shutdown;
mod http_train;
mod http_ui;
mod ledger;
mod ledger_check;
mod search;
mod security;
mod served;
mod tiny_model;
mod x402_fixture;
mod x402_outside;
mod x402_serve;
