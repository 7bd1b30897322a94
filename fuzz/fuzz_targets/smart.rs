#![no_main]
//! Fuzz target `smart`: see `provdb_fuzz_harness::smart`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::smart(data));
