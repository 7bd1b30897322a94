//! Row kernels: every SIMD variant against portable, quantized against float, batch
//! invariance.

use provdb_kernels::dot::{DotKernels, portable};
use provdb_kernels::{Activations, BlockQ4_1, BlockQ8_0};

use crate::{
    dequantize_q4_1, fast_variants, random_q4_1_bytes, random_values, reference_kernels, rng,
};

fn relative(a: f32, b: f32) -> f32 {
    (a - b).abs() / b.abs().max(1.0)
}

#[test]
fn q4_1_simd_matches_portable_and_float_math() {
    let variants = fast_variants("dot q4_1");
    let mut rng = rng(1);
    for blocks in [1usize, 2, 3, 18, 48] {
        let bytes = random_q4_1_bytes(&mut rng, blocks);
        let weights = BlockQ4_1::parse(&bytes);
        let x = random_values(&mut rng, blocks * 32, 2.0);
        let activations = Activations::new(&x, x.len());
        let reference = portable::q4_1(&weights, activations.quantized());
        for set in &variants {
            let mut fast = [0f32];
            (set.dot.q4_1)(&weights, blocks, activations.quantized(), 1, &mut fast);
            assert!(
                relative(fast[0], reference) < 1e-5,
                "{}: {fast:?} vs {reference}",
                set.variant
            );
        }
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
    let variants = fast_variants("dot q8_0");
    let mut rng = rng(2);
    for blocks in [1usize, 5, 18] {
        let w = random_values(&mut rng, blocks * 32, 0.2);
        let weights: Vec<BlockQ8_0> = w.chunks_exact(32).map(BlockQ8_0::quantize).collect();
        let x = random_values(&mut rng, blocks * 32, 2.0);
        let activations = Activations::new(&x, x.len());
        let reference = portable::q8_0(&weights, activations.quantized());
        for set in &variants {
            let mut fast = [0f32];
            (set.dot.q8_0)(&weights, blocks, activations.quantized(), 1, &mut fast);
            assert!(
                relative(fast[0], reference) < 1e-5,
                "{}: {fast:?} vs {reference}",
                set.variant
            );
        }
        let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!(
            (reference - exact).abs() < 0.02 * blocks as f32,
            "{reference} vs {exact}"
        );
    }
}

/// Every (rows, batch) shape: SIMD agrees with portable, and each output equals the batch-1
/// result bit for bit (the paths for 1, 2 and 4 rows at once accumulate in the same order).
#[test]
fn row_kernels_agree_for_every_rows_and_batch_shape() {
    for set in fast_variants("dot rows") {
        row_kernels_agree_for(set.dot);
    }
    row_kernels_agree_for(reference_kernels().dot);
}

fn row_kernels_agree_for(set: &DotKernels) {
    let reference = reference_kernels().dot;
    let mut rng = rng(7);
    let per_row = 3;
    for rows in [1usize, 2, 3, 5] {
        let q4 = BlockQ4_1::parse(&random_q4_1_bytes(&mut rng, rows * per_row));
        let w8 = random_values(&mut rng, rows * per_row * 32, 0.3);
        let q8: Vec<BlockQ8_0> = w8.chunks_exact(32).map(BlockQ8_0::quantize).collect();
        for batch in [1usize, 2, 4, 5, 9] {
            let x = random_values(&mut rng, batch * per_row * 32, 1.5);
            let activations = Activations::new(&x, per_row * 32);
            let mut simd = vec![0f32; rows * batch];
            let mut reference_out = vec![0f32; rows * batch];
            (set.q4_1)(&q4, per_row, activations.quantized(), batch, &mut simd);
            (reference.q4_1)(
                &q4,
                per_row,
                activations.quantized(),
                batch,
                &mut reference_out,
            );
            let mut simd8 = vec![0f32; rows * batch];
            let mut reference8 = vec![0f32; rows * batch];
            (set.q8_0)(&q8, per_row, activations.quantized(), batch, &mut simd8);
            (reference.q8_0)(
                &q8,
                per_row,
                activations.quantized(),
                batch,
                &mut reference8,
            );
            for i in 0..rows * batch {
                assert!(
                    relative(simd[i], reference_out[i]) < 1e-5,
                    "{} q4_1 {rows}x{batch}",
                    set.name
                );
                assert!(
                    relative(simd8[i], reference8[i]) < 1e-5,
                    "{} q8_0 {rows}x{batch}",
                    set.name
                );
            }
            for b in 0..batch {
                let one =
                    Activations::new(&x[b * per_row * 32..(b + 1) * per_row * 32], per_row * 32);
                for r in 0..rows {
                    let mut single = [0f32];
                    let row = &q4[r * per_row..(r + 1) * per_row];
                    (set.q4_1)(row, per_row, one.quantized(), 1, &mut single);
                    assert_eq!(
                        single[0],
                        simd[r * batch + b],
                        "q4_1 row {r} of {rows}, b {b} of {batch}"
                    );
                    let row = &q8[r * per_row..(r + 1) * per_row];
                    (set.q8_0)(row, per_row, one.quantized(), 1, &mut single);
                    assert_eq!(single[0], simd8[r * batch + b], "q8_0 row {r}, b {b}");
                }
            }
        }
    }
}

#[test]
fn f32_simd_matches_portable_for_every_length() {
    let variants = fast_variants("dot f32");
    let mut rng = rng(3);
    for len in [0usize, 1, 7, 8, 15, 16, 17, 64, 384, 1000] {
        let x = random_values(&mut rng, len, 1.0);
        let y = random_values(&mut rng, len, 1.0);
        let reference = (reference_kernels().dot.f32)(&x, &y);
        let exact: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        assert!(
            (f64::from(reference) - exact).abs() < 1e-4,
            "len {len}: {reference} vs {exact}"
        );
        for set in &variants {
            let fast = (set.dot.f32)(&x, &y);
            assert!(
                relative(fast, reference) < 1e-5,
                "{} len {len}: {fast} vs {reference}",
                set.variant
            );
        }
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
