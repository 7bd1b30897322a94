//! The crash matrix: for ingest, indexing, ledger appends, answers served over HTTP, epoch
//! close, chain sync, the crediting of deposits and x402 settlements, SIGKILL the `provdb` process at random
//! moments and check the invariants on reopening: acknowledged data present, nothing partial,
//! the ledger's hash chain verifies, indexes equal a rebuild, the chain neither skipped nor
//! doubled, no deposit credited twice or passed over, no x402 payment lost or charged twice.
//!
//! The test suite runs a few trials of each; `scripts/harden.sh` runs 50 of each
//! (`PROVDB_CRASH_TRIALS`) and keeps the figures (`PROVDB_CRASH_REPORT`).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]
#![allow(
    dead_code,
    reason = "the support modules are shared with the `binary` test, which uses all of them"
)]

#[path = "../anvil.rs"]
mod anvil;
#[path = "../common.rs"]
mod common;
#[path = "../ledger_check.rs"]
mod ledger_check;
#[path = "../served.rs"]
mod served;
#[path = "../tiny_model.rs"]
mod tiny_model;
#[path = "../x402_fixture.rs"]
mod x402_fixture;

mod chain_deposits;
mod chain_sync;
mod epoch_close;
mod indexing;
mod ingest;
mod ledger_appends;
mod served_answers;
mod syncing;
mod trials;
mod x402_settlement;
