//! Reference kernels in plain Rust.

use half::f16;

use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};

/// One Q4_1 row · one activation row: Σ d·a.d·Σ(q·a.q) + m·a.s over blocks.
pub fn q4_1(weights: &[BlockQ4_1], activations: &[BlockQ8]) -> f32 {
    let mut sum = 0f32;
    for (w, a) in weights.iter().zip(activations) {
        let mut dot = 0i32;
        for (j, &byte) in w.qs.iter().enumerate() {
            dot += i32::from(byte & 0x0f) * i32::from(a.qs[j]);
            dot += i32::from(byte >> 4) * i32::from(a.qs[j + 16]);
        }
        let d = f16::from_bits(w.d).to_f32();
        let m = f16::from_bits(w.m).to_f32();
        sum += d * a.d * dot as f32 + m * a.s;
    }
    sum
}

/// One Q8_0 row · one activation row.
pub fn q8_0(weights: &[BlockQ8_0], activations: &[BlockQ8]) -> f32 {
    let mut sum = 0f32;
    for (w, a) in weights.iter().zip(activations) {
        let dot: i32 =
            w.qs.iter()
                .zip(&a.qs)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
        sum += f16::from_bits(w.d).to_f32() * a.d * dot as f32;
    }
    sum
}

fn rows<W>(
    dot: fn(&[W], &[BlockQ8]) -> f32,
    weights: &[W],
    per_row: usize,
    activations: &[BlockQ8],
    batch: usize,
    out: &mut [f32],
) {
    super::check_shapes(weights.len(), per_row, activations.len(), batch, out.len());
    for (row, out) in weights
        .chunks_exact(per_row)
        .zip(out.chunks_exact_mut(batch))
    {
        for (x, o) in activations.chunks_exact(per_row).zip(out) {
            *o = dot(row, x);
        }
    }
}

/// Q4_1 rows × activation rows.
pub fn q4_1_rows(w: &[BlockQ4_1], per_row: usize, x: &[BlockQ8], batch: usize, out: &mut [f32]) {
    rows(q4_1, w, per_row, x, batch, out);
}

/// Q8_0 rows × activation rows.
pub fn q8_0_rows(w: &[BlockQ8_0], per_row: usize, x: &[BlockQ8], batch: usize, out: &mut [f32]) {
    rows(q8_0, w, per_row, x, batch, out);
}

/// f32 · f32 (the vectorisable portable dot product of [`crate::distance`]).
pub fn f32(x: &[f32], y: &[f32]) -> f32 {
    crate::distance::dot(x, y)
}
