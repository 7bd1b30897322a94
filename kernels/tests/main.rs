//! Kernel tests: every SIMD variant this CPU runs agrees with the portable one (each test says
//! on stderr which variants it compared), the quantized products agree with float arithmetic on
//! the dequantized values, and matrix products do not depend on batch size or thread count.
#![allow(clippy::unwrap_used, reason = "tests")]

mod dot;
mod inputs;
mod keccak;
mod lora;
mod matmul;
mod text;
mod variants;

pub(crate) use inputs::{random_q4_1_bytes, random_values};
use provdb_kernels::Kernels;
use provdb_kernels::select::{Variant, available};
use provdb_kernels::{BlockQ4_1, BlockQ8_0};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The variants this CPU should run, found by the test itself rather than by the crate.
pub fn expected_variants() -> Vec<Variant> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c");
        let avx512 = avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512vnni");
        let mut variants = Vec::new();
        if avx512 {
            variants.push(Variant::Avx512);
        }
        if avx2 {
            variants.push(Variant::Avx2);
        }
        variants.push(Variant::Portable);
        variants
    }
    #[cfg(not(target_arch = "x86_64"))]
    vec![Variant::Portable]
}

/// The kernels of every fast (non-portable) variant this CPU runs, after checking that the
/// crate lists exactly the variants the test detects itself (so a CPU with AVX2 cannot end up
/// comparing nothing), and saying on stderr which ones `family`'s test compares.
pub fn fast_variants(family: &str) -> Vec<&'static Kernels> {
    let fast = checked_fast_variants();
    compared(family, &fast);
    fast
}

/// [`fast_variants`] without the report.
pub fn checked_fast_variants() -> Vec<&'static Kernels> {
    assert_eq!(
        available(),
        expected_variants().as_slice(),
        "the crate's variants differ from this CPU's"
    );
    available()
        .iter()
        .filter(|&&v| v != Variant::Portable)
        .map(|&v| Kernels::for_variant(v).unwrap())
        .collect()
}

/// Says on stderr which variants `family`'s test compares with the portable one.
pub fn compared(family: &str, variants: &[&Kernels]) {
    let names: Vec<&str> = variants.iter().map(|k| k.variant.name()).collect();
    if names.is_empty() {
        eprintln!("{family}: no fast variant on this CPU; only the portable kernels ran");
    } else {
        eprintln!("{family}: compared {} with portable", names.join(", "));
    }
}

/// The portable kernels.
pub fn reference_kernels() -> &'static Kernels {
    Kernels::for_variant(Variant::Portable).unwrap()
}

/// The dequantized values of Q4_1 bytes.
pub fn dequantize_q4_1(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 20 * 32];
    for (block, o) in BlockQ4_1::parse(bytes).iter().zip(out.chunks_exact_mut(32)) {
        block.dequantize(o);
    }
    out
}

/// The dequantized values of Q8_0 bytes.
pub fn dequantize_q8_0(bytes: &[u8]) -> Vec<f32> {
    let mut out = vec![0f32; bytes.len() / 34 * 32];
    for (block, o) in BlockQ8_0::parse(bytes).iter().zip(out.chunks_exact_mut(32)) {
        block.dequantize(o);
    }
    out
}

/// A seeded generator.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
