#![no_main]
//! Fuzz target `adapter`: see `provdb_fuzz_harness::adapter`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::adapter(data));
