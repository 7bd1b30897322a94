//! Reference dot products in plain Rust.

use half::f16;

use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};

/// Q4_1 row · quantized activation row: Σ d·a.d·Σ(q·a.q) + m·a.s over blocks.
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

/// Q8_0 row · quantized activation row.
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

/// f32 · f32, eight partial sums (which lets the compiler vectorise it).
pub fn f32(x: &[f32], y: &[f32]) -> f32 {
    let mut partial = [0f32; 8];
    let mut xs = x.chunks_exact(8);
    let mut ys = y.chunks_exact(8);
    for (a, b) in (&mut xs).zip(&mut ys) {
        for i in 0..8 {
            partial[i] += a[i] * b[i];
        }
    }
    let tail: f32 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(a, b)| a * b)
        .sum();
    partial.iter().sum::<f32>() + tail
}
