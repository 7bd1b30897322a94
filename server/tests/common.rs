//! Running the binary.

use std::path::Path;
use std::process::{Command, Output};

pub(crate) fn provdb(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("PROVDB_DATA")
        .output()
        .expect("run provdb")
}

/// `provdb` on a machine without downloaded models.
pub(crate) fn provdb_without_models(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("PROVDB_DATA")
        .env("PROVDB_MODELS", "/nonexistent/provdb-models")
        .output()
        .expect("run provdb")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

pub(crate) fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "failed: {}{}",
        stdout(&output),
        stderr(&output)
    );
    output
}

pub(crate) const ALICE: &str = "0x1111111111111111111111111111111111111111";

/// The repository's root, read at run time: a path baked in at compile time could be another
/// clone's (the target directory is shared between clones).
pub(crate) fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Copies the folder `from` into `to`, recursively (a database or model folder for a trial).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
