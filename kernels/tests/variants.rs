//! Kernel selection: the crate lists the variants this CPU runs (as the test finds them
//! itself), every family of the selected kernels is of the selected variant, and
//! `PROVDB_KERNELS` forces a variant on every family (checked in a child process, since the
//! choice is made once per process).

use std::process::Command;

use provdb_kernels::select::{KERNELS_ENV, available, selected};
use provdb_kernels::{Kernels, Variant};

use crate::expected_variants;

/// Set in the child process: the variant `PROVDB_KERNELS` forces there.
const CHILD_EXPECTS: &str = "PROVDB_KERNELS_TEST_EXPECTS";

fn family_names(set: &Kernels) -> [&'static str; 4] {
    [set.dot.name, set.lora.name, set.keccak.name, set.text.name]
}

#[test]
fn the_crate_lists_the_variants_this_cpu_runs() {
    assert_eq!(available(), expected_variants().as_slice());
    let names: Vec<&str> = available().iter().map(|v| v.name()).collect();
    eprintln!(
        "kernels: this CPU runs {}; selected {}",
        names.join(", "),
        selected()
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert!(
            available().contains(&Variant::Avx2),
            "AVX2 CPU without avx2 kernels"
        );
    }
}

#[test]
fn every_family_runs_the_selected_variant_and_the_environment_forces_it() {
    let set = Kernels::selected();
    assert_eq!(set.variant, selected());
    assert_eq!(family_names(set), [selected().name(); 4]);
    if let Ok(expected) = std::env::var(CHILD_EXPECTS) {
        // The child: the parent set PROVDB_KERNELS to a variant this CPU runs.
        assert_eq!(selected().name(), expected);
        return;
    }
    let requested = std::env::var(KERNELS_ENV).unwrap_or_default();
    if requested.is_empty() {
        assert_eq!(selected(), available()[0], "the fastest variant by default");
    }
    // Force each available variant in a child run of this very test.
    for &variant in available() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "variants::every_family_runs_the_selected_variant_and_the_environment_forces_it",
                "--test-threads=1",
            ])
            .env(KERNELS_ENV, variant.name())
            .env(CHILD_EXPECTS, variant.name())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{KERNELS_ENV}={variant}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("kernels: {KERNELS_ENV}={variant} forced {variant} on every family");
    }
}
