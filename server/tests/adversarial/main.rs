//! Adversaries inside the system, played through the real API (`provdb serve` with keys of each
//! role, and the CLI): a contributor who wants more pay, a reader who wants private data, a job
//! owner who wants credit for data it did not use, and a client who wants free service. Each
//! module is one attack; each test asserts that the attacker gains nothing, that the victim's
//! records, balance and access are unchanged, and that the refusal is a clear 4xx (or exit 1)
//! naming the rule. `docs/GUARANTEES.md` lists every attack with its test.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]
#![allow(dead_code, reason = "the shared helpers serve the binary's tests too")]

mod adapters;
mod amounts;
#[path = "../anvil.rs"]
mod anvil;
#[path = "../common.rs"]
mod common;
#[path = "../ledger_check.rs"]
mod ledger_check;
mod limits;
mod private;
mod secrets;
#[path = "../served.rs"]
mod served;
mod signatures;
mod training;
mod versions;
