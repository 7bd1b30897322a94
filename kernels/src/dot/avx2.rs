//! AVX2 + FMA + F16C dot products (x86-64), the layout of llama.cpp's `ggml_vec_dot_q4_1_q8_1`:
//! codes are widened to 32 unsigned bytes, multiplied with the signed activation bytes by
//! `vpmaddubsw` (pairs summed to i16, no overflow: 15·127·2 < 2^15), summed to i32 by
//! `vpmaddwd`, converted to float and accumulated with the block's combined scale by FMA. Two
//! accumulators hide the FMA latency.

use std::arch::x86_64::*;

use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};
use crate::dot::DotKernels;

/// These kernels, when the CPU has AVX2, FMA and F16C.
pub(super) fn kernels() -> Option<DotKernels> {
    let ok = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    ok.then_some(DotKernels {
        name: "avx2",
        q4_1: q4_1_safe,
        q8_0: q8_0_safe,
        f32: f32_safe,
    })
}

fn q4_1_safe(weights: &[BlockQ4_1], activations: &[BlockQ8]) -> f32 {
    // SAFETY: this function is only handed out by `kernels()`, after the features were
    // detected; the slices are read within their lengths.
    unsafe { q4_1(weights, activations) }
}

fn q8_0_safe(weights: &[BlockQ8_0], activations: &[BlockQ8]) -> f32 {
    // SAFETY: as above.
    unsafe { q8_0(weights, activations) }
}

fn f32_safe(x: &[f32], y: &[f32]) -> f32 {
    // SAFETY: as above.
    unsafe { f32_dot(x, y) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let quad = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
    let single = _mm_add_ss(quad, _mm_movehdup_ps(quad));
    _mm_cvtss_f32(single)
}

/// Both f16 halves of `bits` (low: first) as f32.
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_pair(low: u16, high: u16) -> (f32, f32) {
    let packed = _mm_cvtsi32_si128((u32::from(low) | (u32::from(high) << 16)) as i32);
    let floats = _mm_cvtph_ps(packed);
    (
        _mm_cvtss_f32(floats),
        _mm_cvtss_f32(_mm_movehdup_ps(floats)),
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1_block(w: &BlockQ4_1, a: &BlockQ8, acc: __m256) -> (__m256, f32) {
    let mask = _mm_set1_epi8(0x0f);
    // SAFETY: `qs` is 16 (resp. 32) bytes; unaligned loads.
    let (packed, signed) = unsafe {
        (
            _mm_loadu_si128(w.qs.as_ptr().cast()),
            _mm256_loadu_si256(a.qs.as_ptr().cast()),
        )
    };
    let low = _mm_and_si128(packed, mask);
    let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    let codes = _mm256_set_m128i(high, low);
    let pairs = _mm256_maddubs_epi16(codes, signed);
    let sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    let (d, m) = f16_pair(w.d, w.m);
    (
        _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(sums), acc),
        m * a.s,
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q4_1(weights: &[BlockQ4_1], activations: &[BlockQ8]) -> f32 {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut minimum = 0f32;
    let mut w = weights.chunks_exact(2);
    let mut a = activations.chunks_exact(2);
    for (w2, a2) in (&mut w).zip(&mut a) {
        let (next0, m0) = q4_1_block(&w2[0], &a2[0], acc0);
        let (next1, m1) = q4_1_block(&w2[1], &a2[1], acc1);
        acc0 = next0;
        acc1 = next1;
        minimum += m0 + m1;
    }
    for (wb, ab) in w.remainder().iter().zip(a.remainder()) {
        let (next, m) = q4_1_block(wb, ab, acc0);
        acc0 = next;
        minimum += m;
    }
    hsum(_mm256_add_ps(acc0, acc1)) + minimum
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0_block(w: &BlockQ8_0, a: &BlockQ8, acc: __m256) -> __m256 {
    // SAFETY: both code arrays are 32 bytes; unaligned loads.
    let (x, y) = unsafe {
        (
            _mm256_loadu_si256(w.qs.as_ptr().cast()),
            _mm256_loadu_si256(a.qs.as_ptr().cast()),
        )
    };
    // |x| · (y · sign x) = x · y, with the unsigned operand first as vpmaddubsw wants.
    let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    let sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    let (d, _) = f16_pair(w.d, 0);
    _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(sums), acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0(weights: &[BlockQ8_0], activations: &[BlockQ8]) -> f32 {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut w = weights.chunks_exact(2);
    let mut a = activations.chunks_exact(2);
    for (w2, a2) in (&mut w).zip(&mut a) {
        acc0 = q8_0_block(&w2[0], &a2[0], acc0);
        acc1 = q8_0_block(&w2[1], &a2[1], acc1);
    }
    for (wb, ab) in w.remainder().iter().zip(a.remainder()) {
        acc0 = q8_0_block(wb, ab, acc0);
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f32_dot(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, within both slices.
        unsafe {
            acc0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(x.as_ptr().add(i)),
                _mm256_loadu_ps(y.as_ptr().add(i)),
                acc0,
            );
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(x.as_ptr().add(i + 8)),
                _mm256_loadu_ps(y.as_ptr().add(i + 8)),
                acc1,
            );
        }
        i += 16;
    }
    let mut tail = 0f32;
    while i < n {
        tail += x[i] * y[i];
        i += 1;
    }
    hsum(_mm256_add_ps(acc0, acc1)) + tail
}
