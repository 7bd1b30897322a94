//! Tests of the `provdb-bench` binary: each benchmark runs end to end on a small input, so the
//! bench code cannot rot, and its report is checked against what it wrote; `provdb bench ...`
//! reaches the same binary.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

mod common;
mod delegation;
mod influence;
mod ingest;
mod sql;
mod train;
