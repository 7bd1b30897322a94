//! Which instruction set every kernel runs with: the CPU is detected once and
//! `PROVDB_KERNELS` read once, here, and each kernel family ([`crate::dot`], [`crate::lora`],
//! [`crate::keccak`], [`crate::text`]) builds its functions for the [`selected`] [`Variant`]
//! (and, on request, for any other variant the CPU runs) through one [`Family`] table each.
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
//! [`available`] lists the variants of this CPU, and [`crate::Kernels::for_variant`] gives every
//! family's kernels for any one of them, so tests and benchmarks can compare a fast kernel with
//! the portable one on the same inputs.
//!
//! Invariant: a family's kernels are built only for a variant the CPU runs, so every function
//! handed out is safe to call, whatever `target_feature`s its code was compiled with.

use std::fmt;
use std::sync::OnceLock;

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

/// One kernel family's functions for every variant this CPU runs, built on first use: the
/// family's `build` is called once per available variant and never for another one.
pub(crate) struct Family<K: 'static> {
    build: unsafe fn(Variant) -> K,
    built: OnceLock<Built<K>>,
}

struct Built<K> {
    portable: K,
    /// The other available variants, fastest first.
    fast: Vec<(Variant, K)>,
    /// Index in `fast` of the selected variant; `None`: the portable one.
    selected: Option<usize>,
}

impl<K> Family<K> {
    /// A family whose kernels `build` makes; `build` may assume the CPU runs the variant it is
    /// given (its `# Safety` contract), which [`Family`] guarantees.
    pub(crate) const fn new(build: unsafe fn(Variant) -> K) -> Self {
        Self {
            build,
            built: OnceLock::new(),
        }
    }

    fn built(&self) -> &Built<K> {
        self.built.get_or_init(|| {
            // SAFETY: every CPU runs the portable variant, and `available` lists only the
            // variants whose features were detected.
            let portable = unsafe { (self.build)(Variant::Portable) };
            let fast: Vec<(Variant, K)> = available()
                .iter()
                .filter(|&&v| v != Variant::Portable)
                .map(|&v| (v, unsafe { (self.build)(v) }))
                .collect();
            let selected = fast.iter().position(|(v, _)| *v == selected());
            Built {
                portable,
                fast,
                selected,
            }
        })
    }

    /// The kernels of `variant`; `None` when this CPU does not run it.
    pub(crate) fn for_variant(&self, variant: Variant) -> Option<&K> {
        let built = self.built();
        if variant == Variant::Portable {
            return Some(&built.portable);
        }
        built
            .fast
            .iter()
            .find(|(v, _)| *v == variant)
            .map(|(_, k)| k)
    }

    /// The kernels of the [`selected`] variant.
    pub(crate) fn selected(&self) -> &K {
        let built = self.built();
        built
            .selected
            .and_then(|i| built.fast.get(i))
            .map_or(&built.portable, |(_, k)| k)
    }
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
    fn a_family_is_built_for_exactly_the_available_variants() {
        static NAMES: Family<&'static str> = Family::new(name_of);
        unsafe fn name_of(variant: Variant) -> &'static str {
            assert!(variant.is_available(), "built for {variant}");
            variant.name()
        }
        for variant in Variant::ALL {
            assert_eq!(
                NAMES.for_variant(variant).copied(),
                variant.is_available().then(|| variant.name())
            );
        }
        assert_eq!(*NAMES.selected(), selected().name());
        assert_eq!(available().last(), Some(&Variant::Portable));
    }
}
