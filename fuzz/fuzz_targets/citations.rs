#![no_main]
//! Fuzz target `citations`: see `provdb_fuzz_harness::citations`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::citations(data));
