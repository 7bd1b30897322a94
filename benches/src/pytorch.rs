//! The PyTorch + Hugging Face PEFT anchor of the training benchmarks (`train` times its step,
//! `train_check` loads a provdb-trained adapter with it): `scripts/bench-pytorch.sh`, which
//! keeps its venv under `~/.cache/provdb` (or `$PROVDB_PYTORCH_VENV`) and prints one JSON
//! object. Run from the repository root.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Where scripts/bench-pytorch.sh keeps its venv.
pub(crate) fn pytorch_venv() -> PathBuf {
    match std::env::var_os("PROVDB_PYTORCH_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/provdb/pytorch-venv"),
    }
}

/// Runs `scripts/bench-pytorch.sh` with `args`; its JSON, or why not.
pub(crate) fn run_anchor(args: &[String]) -> Result<Value, String> {
    let output = Command::new("bash")
        .arg("scripts/bench-pytorch.sh")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run scripts/bench-pytorch.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/bench-pytorch.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bad anchor output: {e}"))
}
