#![no_main]
//! Fuzz target `gguf`: see `provdb_fuzz_harness::gguf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| provdb_fuzz_harness::gguf(data));
