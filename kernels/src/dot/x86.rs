//! x86-64 kernels, the arithmetic of llama.cpp's `ggml_vec_dot_q4_1_q8_1`:
//! codes widened to 32 unsigned bytes are multiplied with the signed activation bytes by
//! `vpmaddubsw` (pairs summed to i16 without overflow: 15·127·2 < 2^15; Q8_0 codes go through
//! `|x|` and `sign`), summed to i32 by `vpmaddwd`, converted to float and accumulated with the
//! block's combined scale by FMA. The weight scale pair (d, m) and the activation pair (d, s)
//! are multiplied as one 2-lane product, whose second lane accumulates the Q4_1 minimum term.
//!
//! Two builds of the same code: AVX2 + FMA + F16C (`vpmaddubsw` then `vpmaddwd`), and the same
//! plus AVX-512 VNNI on 256-bit vectors (`vpdpbusd` does both in one instruction; Intel since
//! Ice Lake, AMD since Zen 4). Weight rows are prefetched 16 rows ahead while decoding.
//!
//! Batch 1 (decoding) runs two weight rows at once so each activation block is loaded once for
//! both; larger batches (prefill, batched decoding) unpack each weight block once for four
//! activation rows. Every (row, activation) sum is accumulated in the same order whichever path
//! computes it, so results do not depend on the batch size.

use crate::dot::DotKernels;

/// The rows kernels, compiled for one set of target features; the including module provides
/// `products(unsigned, signed) -> __m256i` (eight i32 sums of 4 byte products each).
macro_rules! row_kernels {
    ($features:literal) => {
        pub(super) fn q4_1_rows_checked(
            w: &[BlockQ4_1],
            per_row: usize,
            x: &[BlockQ8],
            batch: usize,
            out: &mut [f32],
        ) {
            check_shapes(w.len(), per_row, x.len(), batch, out.len());
            // SAFETY: handed out only for a variant the CPU runs (`dot::build`'s contract); the
            // shapes were checked, so every block index below is within its slice.
            unsafe { q4_1_rows(w, per_row, x, batch, out) }
        }

        pub(super) fn q8_0_rows_checked(
            w: &[BlockQ8_0],
            per_row: usize,
            x: &[BlockQ8],
            batch: usize,
            out: &mut [f32],
        ) {
            check_shapes(w.len(), per_row, x.len(), batch, out.len());
            // SAFETY: as above.
            unsafe { q8_0_rows(w, per_row, x, batch, out) }
        }

        pub(super) fn f32_checked(x: &[f32], y: &[f32]) -> f32 {
            // SAFETY: as above; lengths are handled inside.
            unsafe { f32_dot(x, y) }
        }

        #[target_feature(enable = $features)]
        fn hsum(v: __m256) -> f32 {
            let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let quad = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
            let single = _mm_add_ss(quad, _mm_movehdup_ps(quad));
            _mm_cvtss_f32(single)
        }

        /// `[a.d, a.s, 0, 0]`.
        #[target_feature(enable = $features)]
        unsafe fn activation_scales(a: *const BlockQ8) -> __m128 {
            // SAFETY: `d` and `s` are the first 8 bytes of the (8-aligned) block.
            unsafe { _mm_castpd_ps(_mm_load_sd(a.cast())) }
        }

        /// Q4_1: the 32 codes as unsigned bytes, and `[d, m, _, _]`.
        #[target_feature(enable = $features)]
        unsafe fn q4_1_unpack(w: *const BlockQ4_1) -> (__m256i, __m128) {
            // SAFETY: a block is 20 bytes: d and m (4 bytes) then 16 code bytes; unaligned loads.
            unsafe {
                let scales =
                    _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(w.cast::<i32>())));
                let packed = _mm_loadu_si128(std::ptr::addr_of!((*w).qs).cast());
                let mask = _mm_set1_epi8(0x0f);
                let low = _mm_and_si128(packed, mask);
                let high = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
                (_mm256_set_m128i(high, low), scales)
            }
        }

        /// Q8_0: `|codes|`, the codes (for their signs), and `[d, _, _, _]`.
        #[target_feature(enable = $features)]
        unsafe fn q8_0_unpack(w: *const BlockQ8_0) -> (__m256i, __m256i, __m128) {
            // SAFETY: a block is 34 bytes: d (2 bytes) then 32 code bytes; unaligned loads.
            unsafe {
                let d = std::ptr::read_unaligned(w.cast::<u16>());
                let scales = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(d)));
                let codes = _mm256_loadu_si256(std::ptr::addr_of!((*w).qs).cast());
                (_mm256_sign_epi8(codes, codes), codes, scales)
            }
        }

        /// One block's contribution: `acc += (wd·ad) · Σ`, `minimum += [_, wm·as]`.
        #[target_feature(enable = $features)]
        fn accumulate(
            sums: __m256i,
            w_scales: __m128,
            a_scales: __m128,
            acc: &mut __m256,
            minimum: &mut __m128,
        ) {
            let scales = _mm_mul_ps(w_scales, a_scales);
            *acc = _mm256_fmadd_ps(
                _mm256_broadcastss_ps(scales),
                _mm256_cvtepi32_ps(sums),
                *acc,
            );
            *minimum = _mm_add_ps(*minimum, scales);
        }

        #[target_feature(enable = $features)]
        fn finish_q4_1(acc: __m256, minimum: __m128) -> f32 {
            hsum(acc) + _mm_cvtss_f32(_mm_movehdup_ps(minimum))
        }

        #[target_feature(enable = $features)]
        unsafe fn q4_1_rows(
            w: &[BlockQ4_1],
            per_row: usize,
            x: &[BlockQ8],
            batch: usize,
            out: &mut [f32],
        ) {
            let rows = w.len() / per_row;
            let (w, x) = (w.as_ptr(), x.as_ptr());
            // SAFETY (whole body): indices stay below rows·per_row for `w`, batch·per_row for `x`.
            unsafe {
                if batch == 1 {
                    let mut r = 0;
                    while r + 2 <= rows {
                        let (w0, w1) = (w.add(r * per_row), w.add((r + 1) * per_row));
                        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                        let (mut min0, mut min1) = (_mm_setzero_ps(), _mm_setzero_ps());
                        for i in 0..per_row {
                            _mm_prefetch::<_MM_HINT_T0>(w0.wrapping_add(i + 16 * per_row).cast());
                            _mm_prefetch::<_MM_HINT_T0>(w1.wrapping_add(i + 16 * per_row).cast());
                            let a = x.add(i);
                            let signed = _mm256_loadu_si256(std::ptr::addr_of!((*a).qs).cast());
                            let a_scales = activation_scales(a);
                            let (codes, scales) = q4_1_unpack(w0.add(i));
                            accumulate(
                                products(codes, signed),
                                scales,
                                a_scales,
                                &mut acc0,
                                &mut min0,
                            );
                            let (codes, scales) = q4_1_unpack(w1.add(i));
                            accumulate(
                                products(codes, signed),
                                scales,
                                a_scales,
                                &mut acc1,
                                &mut min1,
                            );
                        }
                        out[r] = finish_q4_1(acc0, min0);
                        out[r + 1] = finish_q4_1(acc1, min1);
                        r += 2;
                    }
                    if r < rows {
                        out[r] = q4_1_one(w.add(r * per_row), x, per_row);
                    }
                    return;
                }
                for r in 0..rows {
                    let row = w.add(r * per_row);
                    let mut b = 0;
                    while b + 4 <= batch {
                        let mut acc = [_mm256_setzero_ps(); 4];
                        let mut min = [_mm_setzero_ps(); 4];
                        for i in 0..per_row {
                            let (codes, scales) = q4_1_unpack(row.add(i));
                            for j in 0..4 {
                                let a = x.add((b + j) * per_row + i);
                                let signed = _mm256_loadu_si256(std::ptr::addr_of!((*a).qs).cast());
                                let sums = products(codes, signed);
                                accumulate(
                                    sums,
                                    scales,
                                    activation_scales(a),
                                    &mut acc[j],
                                    &mut min[j],
                                );
                            }
                        }
                        for j in 0..4 {
                            out[r * batch + b + j] = finish_q4_1(acc[j], min[j]);
                        }
                        b += 4;
                    }
                    for b in b..batch {
                        out[r * batch + b] = q4_1_one(row, x.add(b * per_row), per_row);
                    }
                }
            }
        }

        #[target_feature(enable = $features)]
        unsafe fn q4_1_one(row: *const BlockQ4_1, x: *const BlockQ8, per_row: usize) -> f32 {
            let (mut acc, mut min) = (_mm256_setzero_ps(), _mm_setzero_ps());
            for i in 0..per_row {
                // SAFETY: i < per_row, within the row and the activation row.
                unsafe {
                    let a = x.add(i);
                    let signed = _mm256_loadu_si256(std::ptr::addr_of!((*a).qs).cast());
                    let (codes, scales) = q4_1_unpack(row.add(i));
                    accumulate(
                        products(codes, signed),
                        scales,
                        activation_scales(a),
                        &mut acc,
                        &mut min,
                    );
                }
            }
            finish_q4_1(acc, min)
        }

        #[target_feature(enable = $features)]
        unsafe fn q8_0_rows(
            w: &[BlockQ8_0],
            per_row: usize,
            x: &[BlockQ8],
            batch: usize,
            out: &mut [f32],
        ) {
            let rows = w.len() / per_row;
            let (w, x) = (w.as_ptr(), x.as_ptr());
            // SAFETY (whole body): indices stay below rows·per_row for `w`, batch·per_row for `x`.
            unsafe {
                for r in 0..rows {
                    let row = w.add(r * per_row);
                    let mut b = 0;
                    while b + 4 <= batch {
                        let mut acc = [_mm256_setzero_ps(); 4];
                        let mut unused = [_mm_setzero_ps(); 4];
                        for i in 0..per_row {
                            let (magnitudes, codes, scales) = q8_0_unpack(row.add(i));
                            for j in 0..4 {
                                let a = x.add((b + j) * per_row + i);
                                let signed = _mm256_loadu_si256(std::ptr::addr_of!((*a).qs).cast());
                                let sums = products(magnitudes, _mm256_sign_epi8(signed, codes));
                                accumulate(
                                    sums,
                                    scales,
                                    activation_scales(a),
                                    &mut acc[j],
                                    &mut unused[j],
                                );
                            }
                        }
                        for j in 0..4 {
                            out[r * batch + b + j] = hsum(acc[j]);
                        }
                        b += 4;
                    }
                    for b in b..batch {
                        let (mut acc, mut unused) = (_mm256_setzero_ps(), _mm_setzero_ps());
                        for i in 0..per_row {
                            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(i + 16 * per_row).cast());
                            let (magnitudes, codes, scales) = q8_0_unpack(row.add(i));
                            let a = x.add(b * per_row + i);
                            let signed = _mm256_loadu_si256(std::ptr::addr_of!((*a).qs).cast());
                            let sums = products(magnitudes, _mm256_sign_epi8(signed, codes));
                            accumulate(sums, scales, activation_scales(a), &mut acc, &mut unused);
                        }
                        out[r * batch + b] = hsum(acc);
                    }
                }
            }
        }

        #[target_feature(enable = $features)]
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
    };
}

/// AVX2 + FMA + F16C.
mod avx2 {
    use std::arch::x86_64::*;

    use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};
    use crate::dot::check_shapes;

    /// Σ over 32 lanes of unsigned × signed bytes, as eight i32 sums.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn products(unsigned: __m256i, signed: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(unsigned, signed), _mm256_set1_epi16(1))
    }

    row_kernels!("avx2,fma,f16c");
}

/// AVX2 + FMA + F16C + AVX-512 VNNI (256-bit).
mod vnni {
    use std::arch::x86_64::*;

    use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};
    use crate::dot::check_shapes;

    /// Σ over 32 lanes of unsigned × signed bytes, as eight i32 sums (one `vpdpbusd`).
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    fn products(unsigned: __m256i, signed: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), unsigned, signed)
    }

    row_kernels!("avx2,fma,f16c,avx512vnni,avx512vl");
}

/// AVX2 + FMA + F16C ([`crate::select::Variant::Avx2`]).
pub(super) const AVX2: DotKernels = DotKernels {
    name: "avx2",
    q4_1: avx2::q4_1_rows_checked,
    q8_0: avx2::q8_0_rows_checked,
    f32: avx2::f32_checked,
};

/// AVX-512 VNNI on 256-bit vectors ([`crate::select::Variant::Avx512`]).
pub(super) const AVX512: DotKernels = DotKernels {
    name: "avx512",
    q4_1: vnni::q4_1_rows_checked,
    q8_0: vnni::q8_0_rows_checked,
    f32: vnni::f32_checked,
};
