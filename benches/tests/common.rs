//! Running the benchmarks' binary from the repository root (where their default collection and
//! the anchor scripts are).

use std::path::PathBuf;
use std::process::{Command, Output};

/// `provdb-bench` run from the repository's root, without `PROVDB_DATA`.
pub(crate) fn bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provdb-bench"));
    command.current_dir(repo_root()).env_remove("PROVDB_DATA");
    command
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

/// The repository's root, read at run time: a path baked in at compile time could be another
/// clone's (the target directory is shared between clones).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}
