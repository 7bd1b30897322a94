//! Random kernel inputs, shared by the tests and the benchmarks (`benches/kernels.rs` includes
//! this file).

use rand::Rng;
use rand::rngs::StdRng;

/// `count` random values in [-scale, scale).
pub(crate) fn random_values(rng: &mut StdRng, count: usize, scale: f32) -> Vec<f32> {
    (0..count)
        .map(|_| rng.random_range(-scale..scale))
        .collect()
}

/// GGUF bytes of `blocks` random Q4_1 blocks.
pub(crate) fn random_q4_1_bytes(rng: &mut StdRng, blocks: usize) -> Vec<u8> {
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
