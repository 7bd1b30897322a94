//! Products of weight rows with activation rows, for each weight format.
//!
//! A kernel computes `out[r * batch + b] = W[r] · x[b]` for a run of weight rows (a slice of
//! whole rows, `per_row` blocks each) and `batch` activation rows (contiguous, `per_row` blocks
//! each): one call per task, so dispatch and bounds checks are paid per run, not per row.
//! [`portable`] is the reference: plain Rust, any CPU. The x86-64 sets compute the same sums
//! with AVX2, FMA and F16C, or with AVX-512 VNNI (the integer products are exact; only the float
//! accumulation order differs); which one runs is [`crate::select`]'s choice (the fastest the
//! CPU runs, or `PROVDB_KERNELS`'s). The result for a given (r, b) never depends on `batch` or
//! on where the run starts.

pub mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::blocks::{BlockQ4_1, BlockQ8, BlockQ8_0};
use crate::select::{Family, Variant};

/// `fn(weights, per_row, activations, batch, out)`: see the module docs.
pub type RowsKernel<W> = fn(&[W], usize, &[BlockQ8], usize, &mut [f32]);

/// The kernels of one instruction set.
#[derive(Clone, Copy)]
pub struct DotKernels {
    /// Name of its variant ([`Variant::name`]), for reports.
    pub name: &'static str,
    /// Q4_1 weight rows × quantized activation rows.
    pub q4_1: RowsKernel<BlockQ4_1>,
    /// Q8_0 weight rows × quantized activation rows.
    pub q8_0: RowsKernel<BlockQ8_0>,
    /// f32 · f32.
    pub f32: fn(&[f32], &[f32]) -> f32,
}

const PORTABLE: DotKernels = DotKernels {
    name: "portable",
    q4_1: portable::q4_1_rows,
    q8_0: portable::q8_0_rows,
    f32: portable::f32,
};

/// The kernels of `variant`.
///
/// # Safety
/// The CPU runs `variant` (the functions returned use its instructions).
unsafe fn build(variant: Variant) -> DotKernels {
    match variant {
        Variant::Portable => PORTABLE,
        #[cfg(target_arch = "x86_64")]
        Variant::Avx2 => x86::AVX2,
        #[cfg(target_arch = "x86_64")]
        Variant::Avx512 => x86::AVX512,
        #[cfg(not(target_arch = "x86_64"))]
        Variant::Avx2 | Variant::Avx512 => PORTABLE,
    }
}

static DOT: Family<DotKernels> = Family::new(build);

/// The kernels every product runs with (the [`crate::select::selected`] variant's).
pub fn kernels() -> &'static DotKernels {
    DOT.selected()
}

/// The kernels of `variant`; `None` when this CPU does not run it.
pub fn for_variant(variant: Variant) -> Option<&'static DotKernels> {
    DOT.for_variant(variant)
}

/// The portable kernels.
pub(crate) fn portable() -> &'static DotKernels {
    &PORTABLE
}

/// Checks a kernel call's slice lengths (a caller bug if they disagree).
fn check_shapes(weights: usize, per_row: usize, activations: usize, batch: usize, out: usize) {
    assert!(per_row > 0, "rows of zero blocks");
    assert_eq!(weights % per_row, 0, "weights are not whole rows");
    assert_eq!(activations, per_row * batch, "activations != batch rows");
    assert_eq!(out, weights / per_row * batch, "output != rows x batch");
}
