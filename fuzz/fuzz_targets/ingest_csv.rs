#![no_main]
//! Fuzz target `ingest_csv`: see `provdb_fuzz_harness::ingest_csv`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::ingest_csv(data));
