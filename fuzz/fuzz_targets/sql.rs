#![no_main]
//! Fuzz target `sql`: see `provdb_fuzz_harness::sql`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::sql(data));
