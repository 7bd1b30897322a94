//! Targets over model files from outside: a PEFT LoRA adapter folder and a GGUF model.
//!
//! Invariant: a load succeeds or fails with a user error; it never panics, and it never
//! allocates from a length field the file cannot back (libFuzzer's `-malloc_limit_mb` and
//! `-rss_limit_mb` turn a huge allocation into a finding).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use provdb::inference::llama::{LlamaConfig, LlamaModel};
use provdb::inference::lora::{AdapterId, peft};

/// A tiny base model's shapes: what an adapter is checked against.
fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        layers: 2,
        feed_forward: 128,
        vocab: 256,
        context_length: 128,
        rms_eps: 1e-5,
        rope_base: 10_000.0,
    }
}

/// A fresh directory per call (parallel replay tests must not share one), removed after.
fn scratch() -> tempfile::TempDir {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    tempfile::Builder::new()
        .prefix(&format!("provdb-fuzz-model-{call}-"))
        .tempdir()
        .expect("temporary directory")
}

/// `adapter_config.json` and `adapter_model.safetensors` from the input: a little-endian u16
/// gives the length of the configuration, the rest is the weights. Loaded with
/// `provdb_inference::lora::peft::load` against [`tiny_config`].
///
/// Invariants: Ok or a user error; an adapter that loads fits the base and has a rank.
pub fn adapter(data: &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let length = usize::from(u16::from_le_bytes(*length)).min(rest.len());
    let (config_json, weights) = rest.split_at(length);
    let dir = scratch();
    std::fs::write(dir.path().join(peft::CONFIG_FILE), config_json).expect("write config");
    std::fs::write(dir.path().join(peft::WEIGHTS_FILE), weights).expect("write weights");
    let config = tiny_config();
    match peft::load(dir.path(), &config, AdapterId([7; 32])) {
        Ok(adapter) => {
            assert!(
                adapter.fits(&config),
                "a loaded adapter does not fit its base"
            );
            assert!(adapter.rank() >= 1);
            assert!(!adapter.targets().is_empty(), "an adapter without targets");
        }
        Err(e) => assert!(e.is_user_error(), "bad adapter gave a non-user error: {e}"),
    }
}

/// A GGUF file, loaded with `LlamaModel::load` (header, metadata, tokenizer, weights).
///
/// Invariants: Ok or a user error; a model that loads has the validated configuration.
pub fn gguf(data: &[u8]) {
    let dir = scratch();
    let path: PathBuf = dir.path().join("model.gguf");
    std::fs::write(&path, data).expect("write the model");
    match LlamaModel::load(&path) {
        Ok(model) => {
            let config = model.config();
            assert!(config.hidden > 0 && config.layers > 0 && config.vocab > 0);
            assert!(config.hidden.is_multiple_of(config.heads));
        }
        Err(e) => assert!(e.is_user_error(), "bad GGUF gave a non-user error: {e}"),
    }
}
