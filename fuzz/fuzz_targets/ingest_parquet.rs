#![no_main]
//! Fuzz target `ingest_parquet`: see `provdb_fuzz_harness::ingest_parquet`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::ingest_parquet(data));
