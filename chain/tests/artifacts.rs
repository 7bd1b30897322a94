//! The committed artifacts (`chain/artifacts/*.json`, from which `sol!` generates the bindings)
//! are what the pinned solc makes of `chain/contracts/*.sol` today, and the test-only artifacts
//! (`chain/artifacts/test/`) what it makes of `chain/contracts/test/*.sol`: recompiles into a
//! temporary directory and compares every file byte for byte. Needs node and npm
//! (scripts/chain-tools.sh installs the pinned solc and OpenZeppelin contracts once).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn committed_artifacts_match_the_contract_sources() {
    // At run time: a path baked in at compile time could be another clone's.
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = crate_dir.join("../scripts/chain-tools.sh");
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(&script)
        .args(["compile", "--check"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "compiling the contracts failed");
    let committed = crate_dir.join("artifacts");
    let fresh = files(out.path());
    let stored = files(&committed);
    assert_eq!(fresh, stored, "artifact files differ from the contracts");
    assert!(
        stored.iter().any(|f| f == "test/TestToken.json"),
        "the test token is compiled apart, into artifacts/test/"
    );
    for name in &fresh {
        let a = std::fs::read(out.path().join(name)).unwrap();
        let b = std::fs::read(committed.join(name)).unwrap();
        assert!(
            a == b,
            "chain/artifacts/{name} is stale: run `scripts/chain-tools.sh compile` and commit it"
        );
    }
}

/// The files under `dir` (one level of subdirectories), as sorted relative paths.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            for inner in std::fs::read_dir(entry.path()).unwrap() {
                let inner = inner.unwrap().file_name().to_string_lossy().into_owned();
                out.push(format!("{name}/{inner}"));
            }
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}
