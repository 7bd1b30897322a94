//! Every family's kernels for one variant, side by side ([`Kernels`]): what
//! [`crate::matmul_with`] and [`crate::apply_low_rank_with`] take, and what tests and benchmarks
//! compare variant by variant. The families build and choose their own kernels
//! ([`crate::select`]); this only gathers them.

use std::fmt;
use std::sync::OnceLock;

use crate::dot::DotKernels;
use crate::keccak::KeccakKernels;
use crate::lora::LoraKernels;
use crate::select::{self, Variant};
use crate::text::TextKernels;

/// Every family's kernels for one variant.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The variant.
    pub variant: Variant,
    /// Quantized and f32 dot products ([`crate::dot`]).
    pub dot: &'static DotKernels,
    /// The LoRA apply's inner loops ([`crate::lora`]).
    pub lora: &'static LoraKernels,
    /// Eight-lane keccak256 ([`crate::keccak`]).
    pub keccak: &'static KeccakKernels,
    /// The text scan ([`crate::text`]).
    pub text: &'static TextKernels,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

/// The kernels of every available variant: the portable ones, and the others fastest first.
struct Table {
    portable: Kernels,
    fast: Vec<Kernels>,
}

fn gather(variant: Variant) -> Option<Kernels> {
    Some(Kernels {
        variant,
        dot: crate::dot::for_variant(variant)?,
        lora: crate::lora::for_variant(variant)?,
        keccak: crate::keccak::for_variant(variant)?,
        text: crate::text::for_variant(variant)?,
    })
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table {
        portable: Kernels {
            variant: Variant::Portable,
            dot: crate::dot::portable(),
            lora: crate::lora::portable(),
            keccak: crate::keccak::portable(),
            text: crate::text::portable(),
        },
        fast: select::available()
            .iter()
            .filter(|&&v| v != Variant::Portable)
            .filter_map(|&v| gather(v))
            .collect(),
    })
}

impl Kernels {
    /// The kernels of `variant`; `None` when this CPU does not run it.
    pub fn for_variant(variant: Variant) -> Option<&'static Kernels> {
        let table = table();
        if variant == Variant::Portable {
            return Some(&table.portable);
        }
        table.fast.iter().find(|k| k.variant == variant)
    }

    /// The kernels every family runs with ([`select::selected`]'s variant).
    pub fn selected() -> &'static Kernels {
        Self::for_variant(select::selected()).unwrap_or(&table().portable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_exactly_the_available_variants_and_each_family_agrees() {
        for variant in Variant::ALL {
            let kernels = Kernels::for_variant(variant);
            assert_eq!(kernels.is_some(), variant.is_available(), "{variant}");
            if let Some(kernels) = kernels {
                assert_eq!(kernels.variant, variant);
                let names = [
                    kernels.dot.name,
                    kernels.lora.name,
                    kernels.keccak.name,
                    kernels.text.name,
                ];
                assert_eq!(names, [variant.name(); 4]);
            }
        }
        assert_eq!(Kernels::selected().variant, select::selected());
        assert_eq!(crate::dot::kernels().name, select::selected().name());
    }
}
