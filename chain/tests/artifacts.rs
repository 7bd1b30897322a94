//! The committed artifacts (`chain/artifacts/*.json`, from which `sol!` generates the bindings)
//! are what the pinned solc makes of `chain/contracts/*.sol` today: recompiles into a
//! temporary directory and compares byte for byte. Needs node and npm (scripts/chain-tools.sh
//! installs the pinned solc once).
#![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

use std::path::PathBuf;
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
    let mut fresh: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fresh.sort();
    let mut stored: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    assert_eq!(fresh, stored, "artifact files differ from the contracts");
    for name in &fresh {
        let a = std::fs::read(out.path().join(name)).unwrap();
        let b = std::fs::read(committed.join(name)).unwrap();
        assert!(
            a == b,
            "chain/artifacts/{name} is stale: run `scripts/chain-tools.sh compile` and commit it"
        );
    }
}
