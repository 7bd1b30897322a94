//! The LoRA apply's inner loops, `expand` (`y += Σⱼ tⱼ · Bᵀ[j]`) over f32 or bf16 factors and the
//! bf16 dot product of the shrink, each compiled for AVX-512 and AVX2 and portably (which one
//! runs is [`crate::select`]'s choice). All builds run the same operations in the same order
//! (separate multiplies and adds, no fused ones), so they give the same bits.

use crate::select::{Family, Variant};

/// A stored factor value: f32, or bf16 as its bits.
trait Element: Copy {
    fn widen(self) -> f32;
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Element for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        bf16_to_f32(self)
    }
}

/// The f32 value of a bf16 bit pattern (exact).
#[inline(always)]
pub(super) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Outputs accumulated in registers by [`expand`] at a time.
const EXPAND_BLOCK: usize = 64;

/// `y[o] += Σⱼ t[j] · b[j][o]`, `b` holding `t.len()` rows of `y.len()` values. A block of
/// outputs stays in registers across every `j` (one load and store of `y` per block, not per
/// `j`); each `y[o]` is still summed in order of `j`.
#[inline(always)]
fn expand<T: Element>(t: &[f32], b: &[T], y: &mut [f32]) {
    let output = y.len();
    let whole = output - output % EXPAND_BLOCK;
    for start in (0..whole).step_by(EXPAND_BLOCK) {
        let mut block = [0f32; EXPAND_BLOCK];
        block.copy_from_slice(&y[start..start + EXPAND_BLOCK]);
        for (j, &tj) in t.iter().enumerate() {
            let row = &b[j * output + start..j * output + start + EXPAND_BLOCK];
            for (acc, &value) in block.iter_mut().zip(row) {
                *acc += tj * value.widen();
            }
        }
        y[start..start + EXPAND_BLOCK].copy_from_slice(&block);
    }
    for (j, &tj) in t.iter().enumerate() {
        let row = &b[j * output + whole..(j + 1) * output];
        for (acc, &value) in y[whole..].iter_mut().zip(row) {
            *acc += tj * value.widen();
        }
    }
}

/// Lanes of [`dot`]'s partial sums.
const DOT_LANES: usize = 16;

/// `a · x` with 16 partial sums added in lane order at the end.
#[inline(always)]
fn dot<T: Element>(a: &[T], x: &[f32]) -> f32 {
    let main = a.len() - a.len() % DOT_LANES;
    let mut lanes = [0f32; DOT_LANES];
    for (a, x) in a[..main]
        .chunks_exact(DOT_LANES)
        .zip(x[..main].chunks_exact(DOT_LANES))
    {
        for ((sum, &a), &x) in lanes.iter_mut().zip(a).zip(x) {
            *sum += a.widen() * x;
        }
    }
    let mut sum = 0f32;
    for lane in lanes {
        sum += lane;
    }
    for (&a, &x) in a[main..].iter().zip(&x[main..]) {
        sum += a.widen() * x;
    }
    sum
}

/// The LoRA kernels of one variant.
#[derive(Clone, Copy)]
pub struct LoraKernels {
    /// Name of its variant ([`Variant::name`]), for reports.
    pub name: &'static str,
    /// `a · x` for bf16 `a` (the shrink of bf16 factors).
    pub dot_bf16: fn(&[u16], &[f32]) -> f32,
    /// `y += Σⱼ t[j] · b[j]` for f32 `b` (the expand).
    pub expand_f32: fn(&[f32], &[f32], &mut [f32]),
    /// The same for bf16 `b`.
    pub expand_bf16: fn(&[f32], &[u16], &mut [f32]),
}

macro_rules! build {
    ($module:ident, $feature:literal) => {
        #[cfg(target_arch = "x86_64")]
        mod $module {
            #[target_feature(enable = $feature)]
            pub(super) fn dot_bf16(a: &[u16], x: &[f32]) -> f32 {
                super::dot(a, x)
            }

            #[target_feature(enable = $feature)]
            pub(super) fn expand_f32(t: &[f32], b: &[f32], y: &mut [f32]) {
                super::expand(t, b, y)
            }

            #[target_feature(enable = $feature)]
            pub(super) fn expand_bf16(t: &[f32], b: &[u16], y: &mut [f32]) {
                super::expand(t, b, y)
            }
        }
    };
}

build!(avx512, "avx512f");
build!(avx2, "avx2");

const PORTABLE: LoraKernels = LoraKernels {
    name: "portable",
    dot_bf16: dot::<u16>,
    expand_f32: expand::<f32>,
    expand_bf16: expand::<u16>,
};

static LORA: Family<LoraKernels> = Family::new(build);

/// The kernels every LoRA apply runs with (the [`crate::select::selected`] variant's).
pub fn kernels() -> &'static LoraKernels {
    LORA.selected()
}

/// The kernels of `variant`; `None` when this CPU does not run it.
pub fn for_variant(variant: Variant) -> Option<&'static LoraKernels> {
    LORA.for_variant(variant)
}

/// The portable kernels.
pub(crate) fn portable() -> &'static LoraKernels {
    &PORTABLE
}

/// The kernels of `variant`.
///
/// # Safety
/// The CPU runs `variant` (the functions returned use its instructions).
unsafe fn build(variant: Variant) -> LoraKernels {
    match variant {
        Variant::Portable => PORTABLE,
        // SAFETY (all three): the CPU runs AVX2 (the caller's promise).
        #[cfg(target_arch = "x86_64")]
        Variant::Avx2 => LoraKernels {
            name: "avx2",
            dot_bf16: |a, x| unsafe { avx2::dot_bf16(a, x) },
            expand_f32: |t, b, y| unsafe { avx2::expand_f32(t, b, y) },
            expand_bf16: |t, b, y| unsafe { avx2::expand_bf16(t, b, y) },
        },
        // SAFETY (all three): the CPU runs AVX-512F (the caller's promise).
        #[cfg(target_arch = "x86_64")]
        Variant::Avx512 => LoraKernels {
            name: "avx512",
            dot_bf16: |a, x| unsafe { avx512::dot_bf16(a, x) },
            expand_f32: |t, b, y| unsafe { avx512::expand_f32(t, b, y) },
            expand_bf16: |t, b, y| unsafe { avx512::expand_bf16(t, b, y) },
        },
        #[cfg(not(target_arch = "x86_64"))]
        Variant::Avx2 | Variant::Avx512 => PORTABLE,
    }
}
