#![no_main]
//! Fuzz target `api_bodies`: see `provdb_fuzz_harness::api_bodies`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::api_bodies(data));
