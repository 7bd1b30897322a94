//! Inference tests, one binary: the real MiniLM against the numpy reference fixtures, and tiny
//! random models that the tests write themselves for loading and bad-input checks.
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

mod batching;
mod lora;
mod minilm;
mod smollm2;
mod tiny_bert;
mod tiny_llama;
mod tiny_safetensors;
mod train;
mod train_checks;
mod train_influence;

/// Largest absolute difference between two vectors of the same length.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}
