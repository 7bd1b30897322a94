#![no_main]
//! Fuzz target `ingest_jsonl`: see `provdb_fuzz_harness::ingest_jsonl`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::ingest_jsonl(data));
