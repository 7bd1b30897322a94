//! Kernel tests: the SIMD dot products agree with the portable ones, the quantized products
//! agree with float arithmetic on the dequantized values, and matrix products do not depend on
//! batch size or thread count.
#![allow(clippy::unwrap_used, reason = "tests")]

mod dot;
mod keccak;
mod lora;
mod matmul;

use provdb_kernels::{BlockQ4_1, BlockQ8_0};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `count` random values in [-scale, scale).
pub fn random_values(rng: &mut StdRng, count: usize, scale: f32) -> Vec<f32> {
    (0..count)
        .map(|_| rng.random_range(-scale..scale))
        .collect()
}

/// GGUF bytes of `blocks` random Q4_1 blocks.
pub fn random_q4_1_bytes(rng: &mut StdRng, blocks: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(blocks * 20);
    for _ in 0..blocks {
        let d = half::f16::from_f32(rng.random_range(0.001f32..0.05)).to_bits();
        let m = half::f16::from_f32(rng.random_range(-0.3f32..0.0)).to_bits();
        bytes.extend(d.to_le_bytes());
        bytes.extend(m.to_le_bytes());
        bytes.extend((0..16).map(|_| rng.random::<u8>()));
    }
    bytes
}

/// The dequantized values of Q4_1 bytes.
pub fn dequantize_q4_1(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 20 * 32];
    for (block, o) in BlockQ4_1::parse(bytes).iter().zip(out.chunks_exact_mut(32)) {
        block.dequantize(o);
    }
    out
}

/// The dequantized values of Q8_0 bytes.
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 34 * 32];
    for (block, o) in BlockQ8_0::parse(bytes).iter().zip(out.chunks_exact_mut(32)) {
        block.dequantize(o);
    }
    out
}

/// A seeded generator.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
