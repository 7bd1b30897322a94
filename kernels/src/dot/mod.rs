//! Dot products of one weight row with one activation row, for each weight format.
//!
//! [`portable`] is the reference: plain Rust, any CPU. [`avx2`] computes the same sums with
//! AVX2, FMA and F16C (the integer products are exact; only the float accumulation order
//! differs) and is chosen once, at first use, when the CPU has those features. Set
//! `PROVDB_KERNELS=portable` to force the portable path.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod portable;

use std::sync::OnceLock;

use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};

/// The dot products of one instruction set.
#[derive(Clone, Copy)]
pub struct DotKernels {
    /// Name, for reports.
    pub name: &'static str,
    /// Q4_1 weights · quantized activations.
    pub q4_1: fn(&[BlockQ4_1], &[BlockQ8]) -> f32,
    /// Q8_0 weights · quantized activations.
    pub q8_0: fn(&[BlockQ8_0], &[BlockQ8]) -> f32,
    /// f32 · f32.
    pub f32: fn(&[f32], &[f32]) -> f32,
}

const PORTABLE: DotKernels = DotKernels {
    name: "portable",
    q4_1: portable::q4_1,
    q8_0: portable::q8_0,
    f32: portable::f32,
};

/// The fastest kernels this CPU runs.
pub fn kernels() -> &'static DotKernels {
    static CHOSEN: OnceLock<DotKernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        if std::env::var("PROVDB_KERNELS").as_deref() == Ok("portable") {
            return PORTABLE;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(kernels) = avx2::kernels() {
            return kernels;
        }
        PORTABLE
    })
}

/// The portable kernels, for comparison in tests and benchmarks.
pub fn portable_kernels() -> &'static DotKernels {
    &PORTABLE
}
