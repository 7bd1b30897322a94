//! Which instruction set every kernel runs with: the CPU is detected once and
//! `PROVDB_KERNELS` read once, here, and each kernel family ([`crate::dot`], [`crate::lora`],
//! [`crate::keccak`], [`crate::text`]) takes its functions from the one [`Kernels`] table of the
//! chosen [`Variant`].
//!
//! The variants are levels, each a superset of the one before: [`Variant::Portable`] (plain
//! Rust, any CPU: the reference every other variant is checked against), [`Variant::Avx2`]
//! (x86-64 AVX2 + FMA + F16C) and [`Variant::Avx512`] (that plus AVX-512 F, VL and VNNI: Intel
//! since Ice Lake, AMD since Zen 4; a CPU with AVX-512F but not VNNI runs the AVX2 level). A
//! family without code of its own for a level uses the one below (the text scan's AVX-512 entry
//! is its AVX2 scan; keccak has only an AVX-512 kernel, and below it storage hashes one message
//! at a time).
//!
//! `PROVDB_KERNELS=portable|avx2|avx512` forces a variant, for every family at once. An unknown
//! name, or a variant this CPU cannot run, is not an error: one warning goes to stderr and the
//! fastest variant the CPU runs is used (a library must not fail a query over a tuning knob).
//! [`available`] lists the variants of this CPU and [`for_variant`] gives any one of them, so
//! tests and benchmarks can compare a fast kernel with the portable one on the same inputs.
//!
//! Invariant: a [`Kernels`] table exists only for a variant the CPU runs, so every function in
//! it is safe to call, whatever `target_feature`s its code was compiled with.

use std::fmt;
use std::sync::OnceLock;

use crate::dot::DotKernels;
use crate::keccak::KeccakKernels;
use crate::lora::LoraKernels;
use crate::text::TextKernels;

/// The environment variable that forces a variant.
pub const KERNELS_ENV: &str = "PROVDB_KERNELS";

/// An instruction-set level the kernels are built for, each including the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// Plain Rust on any CPU: the reference.
    Portable,
    /// x86-64 AVX2, FMA and F16C.
    Avx2,
    /// x86-64 AVX2, FMA, F16C and AVX-512 F, VL and VNNI.
    Avx512,
}

impl Variant {
    /// Every variant, fastest first.
    pub const ALL: [Variant; 3] = [Variant::Avx512, Variant::Avx2, Variant::Portable];

    /// Its name, as `PROVDB_KERNELS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// The variant `name` names (as [`Variant::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// True when this CPU runs it (detected at run time: the binary targets baseline x86-64).
    pub fn is_available(self) -> bool {
        available().contains(&self)
    }

    fn detected(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                Self::Avx2.detected()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx2 | Self::Avx512 => false,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every variant this CPU runs, fastest first; [`Variant::Portable`] is always the last.
pub fn available() -> &'static [Variant] {
    static FOUND: OnceLock<Vec<Variant>> = OnceLock::new();
    FOUND.get_or_init(|| Variant::ALL.into_iter().filter(|v| v.detected()).collect())
}

/// The variant every family runs with: `PROVDB_KERNELS`'s when this CPU runs it, else the
/// fastest available (see the module docs).
pub fn selected() -> Variant {
    static SELECTED: OnceLock<Variant> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let requested = std::env::var(KERNELS_ENV).ok();
        choose(requested.as_deref(), available()).unwrap_or_else(|fallback| {
            eprintln!("provdb: {}", fallback.warning);
            fallback.variant
        })
    })
}

/// A `PROVDB_KERNELS` that could not be honoured: what runs instead, and why.
#[derive(Debug, PartialEq, Eq)]
struct Fallback {
    variant: Variant,
    warning: String,
}

/// The variant to run given the requested name (`None` or empty: none) and the available
/// variants (fastest first, never empty).
fn choose(requested: Option<&str>, available: &[Variant]) -> Result<Variant, Fallback> {
    let fastest = available.first().copied().unwrap_or(Variant::Portable);
    let requested = requested.map(str::trim).unwrap_or_default();
    if requested.is_empty() {
        return Ok(fastest);
    }
    let names = || {
        let names: Vec<&str> = available.iter().map(|v| v.name()).collect();
        names.join(", ")
    };
    match Variant::from_name(requested) {
        Some(variant) if available.contains(&variant) => Ok(variant),
        Some(_) => Err(Fallback {
            variant: fastest,
            warning: format!(
                "{KERNELS_ENV}={requested}: this CPU does not run it (it runs {}); using {fastest}",
                names()
            ),
        }),
        None => Err(Fallback {
            variant: fastest,
            warning: format!(
                "{KERNELS_ENV}={requested} names no kernel variant (portable, avx2, avx512); \
                 using {fastest}"
            ),
        }),
    }
}

/// Every family's kernels for one variant.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The variant.
    pub variant: Variant,
    /// Quantized and f32 dot products ([`crate::dot`]).
    pub dot: DotKernels,
    /// The LoRA apply's inner loops ([`crate::lora`]).
    pub lora: LoraKernels,
    /// Eight-lane keccak256 ([`crate::keccak`]).
    pub keccak: KeccakKernels,
    /// The text scan ([`crate::text`]).
    pub text: TextKernels,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

impl Kernels {
    /// The tables of one variant.
    ///
    /// # Safety
    /// The CPU runs `variant`.
    unsafe fn build(variant: Variant) -> Self {
        // SAFETY (all four): the caller's promise.
        unsafe {
            Self {
                variant,
                dot: crate::dot::build(variant),
                lora: crate::lora::build(variant),
                keccak: crate::keccak::build(variant),
                text: crate::text::build(variant),
            }
        }
    }
}

/// The tables of every available variant, built once.
struct Table {
    portable: Kernels,
    fast: Vec<Kernels>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table {
        // SAFETY: every CPU runs the portable variant, and `available` lists only the
        // variants whose features were detected.
        portable: unsafe { Kernels::build(Variant::Portable) },
        fast: available()
            .iter()
            .filter(|&&v| v != Variant::Portable)
            .map(|&v| unsafe { Kernels::build(v) })
            .collect(),
    })
}

/// The kernels of `variant`; `None` when this CPU does not run it.
pub fn for_variant(variant: Variant) -> Option<&'static Kernels> {
    let table = table();
    if variant == Variant::Portable {
        return Some(&table.portable);
    }
    table.fast.iter().find(|k| k.variant == variant)
}

/// The kernels every family runs with ([`selected`]'s).
pub fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<&'static Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| for_variant(selected()).unwrap_or(&table().portable))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Variant] = &Variant::ALL;

    #[test]
    fn names_round_trip() {
        for variant in Variant::ALL {
            assert_eq!(Variant::from_name(variant.name()), Some(variant));
        }
        assert_eq!(Variant::from_name("avx512-vnni"), None);
    }

    #[test]
    fn no_request_picks_the_fastest_available() {
        assert_eq!(choose(None, ALL), Ok(Variant::Avx512));
        assert_eq!(
            choose(Some(" "), &[Variant::Avx2, Variant::Portable]),
            Ok(Variant::Avx2)
        );
        assert_eq!(choose(None, &[Variant::Portable]), Ok(Variant::Portable));
    }

    #[test]
    fn an_available_request_is_honoured() {
        assert_eq!(choose(Some("portable"), ALL), Ok(Variant::Portable));
        assert_eq!(choose(Some("avx2"), ALL), Ok(Variant::Avx2));
    }

    #[test]
    fn an_unavailable_or_unknown_request_falls_back_with_a_warning() {
        let fallback = choose(Some("avx512"), &[Variant::Avx2, Variant::Portable]).unwrap_err();
        assert_eq!(fallback.variant, Variant::Avx2);
        assert!(
            fallback
                .warning
                .contains("does not run it (it runs avx2, portable)"),
            "{}",
            fallback.warning
        );
        let fallback = choose(Some("sse9"), &[Variant::Portable]).unwrap_err();
        assert_eq!(fallback.variant, Variant::Portable);
        assert!(
            fallback.warning.contains("names no kernel variant"),
            "{}",
            fallback.warning
        );
    }

    #[test]
    fn the_table_holds_exactly_the_available_variants() {
        for variant in Variant::ALL {
            let kernels = for_variant(variant);
            assert_eq!(kernels.is_some(), variant.is_available(), "{variant}");
            if let Some(kernels) = kernels {
                assert_eq!(kernels.variant, variant);
                assert_eq!(kernels.dot.name, variant.name());
            }
        }
        assert_eq!(available().last(), Some(&Variant::Portable));
        assert_eq!(kernels().variant, selected());
    }
}
