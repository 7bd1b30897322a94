//! Dot kernels: SIMD against portable, quantized against float.

use provdb_kernels::dot::{kernels, portable_kernels};
use provdb_kernels::{Activations, BlockQ4_1, BlockQ8_0};

use crate::{dequantize_q4_1, random_q4_1_bytes, random_values, rng};

fn relative(a: f32, b: f32) -> f32 {
    (a - b).abs() / b.abs().max(1.0)
}

#[test]
fn q4_1_simd_matches_portable_and_float_math() {
    let mut rng = rng(1);
    for blocks in [1usize, 2, 3, 18, 48] {
        let bytes = random_q4_1_bytes(&mut rng, blocks);
        let weights = BlockQ4_1::parse(&bytes);
        let x = random_values(&mut rng, blocks * 32, 2.0);
        let activations = Activations::new(&x, x.len());
        let fast = (kernels().q4_1)(&weights, activations.quantized_row(0));
        let reference = (portable_kernels().q4_1)(&weights, activations.quantized_row(0));
        assert!(relative(fast, reference) < 1e-5, "{fast} vs {reference}");
        // Against float math on the dequantized weights: only the activation rounding differs.
        let exact: f32 = dequantize_q4_1(&bytes)
            .iter()
            .zip(&x)
            .map(|(w, v)| w * v)
            .sum();
        let tolerance = 0.01 * (blocks as f32).sqrt();
        assert!(
            (reference - exact).abs() < tolerance,
            "{reference} vs {exact}"
        );
    }
}

#[test]
fn q8_0_simd_matches_portable_and_float_math() {
    let mut rng = rng(2);
    for blocks in [1usize, 5, 18] {
        let w = random_values(&mut rng, blocks * 32, 0.2);
        let weights: Vec<BlockQ8_0> = w.chunks_exact(32).map(BlockQ8_0::quantize).collect();
        let x = random_values(&mut rng, blocks * 32, 2.0);
        let activations = Activations::new(&x, x.len());
        let fast = (kernels().q8_0)(&weights, activations.quantized_row(0));
        let reference = (portable_kernels().q8_0)(&weights, activations.quantized_row(0));
        assert!(relative(fast, reference) < 1e-5, "{fast} vs {reference}");
        let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!(
            (reference - exact).abs() < 0.02 * blocks as f32,
            "{reference} vs {exact}"
        );
    }
}

#[test]
fn f32_simd_matches_portable_for_every_length() {
    let mut rng = rng(3);
    for len in [0usize, 1, 7, 8, 15, 16, 17, 64, 384, 1000] {
        let x = random_values(&mut rng, len, 1.0);
        let y = random_values(&mut rng, len, 1.0);
        let fast = (kernels().f32)(&x, &y);
        let exact: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        assert!(
            (f64::from(fast) - exact).abs() < 1e-4,
            "len {len}: {fast} vs {exact}"
        );
        assert!(relative(fast, (portable_kernels().f32)(&x, &y)) < 1e-5);
    }
}

#[test]
fn zero_activations_quantize_without_dividing_by_zero() {
    let x = vec![0f32; 64];
    let activations = Activations::new(&x, 64);
    assert!(
        activations
            .quantized_row(0)
            .iter()
            .all(|b| b.d == 0.0 && b.s == 0.0)
    );
}
