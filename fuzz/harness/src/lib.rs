//! The bodies of provdb's fuzz targets: one function per target, `fn target(data: &[u8])`,
//! which feeds the bytes to a parser of outside input through the real public code path and
//! panics when an invariant breaks (a panic inside provdb is a finding too).
//!
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly) call these functions; `tests/replay.rs` runs
//! every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them on
//! stable, so the seeds and every crash ever found stay tests of `cargo test --workspace`.
//! A target owns its fixture (a database in a temporary directory, opened once per process
//! and never cleaned up: libFuzzer exits without running destructors).

mod api;
mod ingest;
mod models;
mod sql;
mod text;

pub use api::api_bodies;
pub use ingest::{LIMITS, ingest_csv, ingest_jsonl, ingest_outcome, ingest_parquet};
pub use models::{adapter, gguf};
pub use sql::sql;
pub use text::{citations, smart};

/// A target's body: one input, panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and `fuzz/corpus/` name them.
pub const TARGETS: [(&str, Target); 9] = [
    ("ingest_jsonl", ingest_jsonl),
    ("ingest_csv", ingest_csv),
    ("ingest_parquet", ingest_parquet),
    ("smart", smart),
    ("adapter", adapter),
    ("gguf", gguf),
    ("citations", citations),
    ("api_bodies", api_bodies),
    ("sql", sql),
];
