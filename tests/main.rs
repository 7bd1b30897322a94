//! Whole-engine tests, compiled as one binary (one link) with a module per area.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

mod amounts;
mod answers;
mod common;
mod corrupt_input;
mod factory;
mod influence;
mod ingest;
mod search;
mod signatures;
mod sql;
mod sql_access;
mod sql_scan;
mod versions;
