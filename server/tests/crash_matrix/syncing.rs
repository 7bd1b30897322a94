//! The `provdb chain sync` process the chain scenarios kill.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::anvil::{Anvil, key_file};

/// Starts `provdb chain sync` on `data` against `anvil`, signing with `key`, output discarded.
pub(crate) fn spawn_sync(data: &Path, anvil: &Anvil, key: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_provdb"))
        .arg("--data")
        .arg(data)
        .args([
            "chain",
            "sync",
            "--key-file",
            &key_file(key),
            "--rpc",
            &anvil.url,
        ])
        .env_remove("PROVDB_DATA")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
