//! Whole-engine tests, compiled as one binary (one link) with a module per area.

mod common;
mod corrupt_input;
mod ingest;
mod signatures;
mod versions;
