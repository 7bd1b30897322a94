//! `provdb bench ...`: the benchmarks are the `provdb-bench` binary (the `benches/` crate), so
//! that the production binary carries no benchmark code. This command runs the `provdb-bench`
//! found beside `provdb`'s own executable (cargo builds both into the same directory) with the
//! arguments after `bench`, unchanged. On Unix it replaces this process (`exec`): the caller
//! sees the benchmark's output, exit code and signals as its own, and a SIGKILL sent to this
//! pid reaches the benchmark (the crash matrix relies on it).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::output::UserError;

/// The benchmarks' binary, as cargo names it.
const BENCH_BINARY: &str = "provdb-bench";

/// Runs `provdb-bench ARGS...`; returns only when it cannot be started (or, where there is no
/// `exec`, when it succeeded).
pub(crate) fn run(args: Vec<OsString>) -> anyhow::Result<()> {
    let binary = bench_binary()?;
    let mut command = Command::new(&binary);
    command.args(args);
    exec(command, &binary)
}

/// `provdb-bench` beside the running executable, or a user error saying how to build it.
fn bench_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running provdb executable")?;
    let dir = exe
        .parent()
        .context("the provdb executable has no directory")?;
    let binary = dir.join(format!("{BENCH_BINARY}{}", std::env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        return Err(UserError(format!(
            "provdb bench runs the {BENCH_BINARY} binary, which is not in {}: build it with \
             `cargo build --workspace --bin {BENCH_BINARY}` (add --release if provdb was built \
             with it), or run {BENCH_BINARY} directly",
            dir.display()
        ))
        .into());
    }
    Ok(binary)
}

#[cfg(unix)]
fn exec(mut command: Command, binary: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    // `exec` returns only when it failed.
    let error = command.exec();
    Err(error).with_context(|| format!("cannot run {}", binary.display()))
}

#[cfg(not(unix))]
fn exec(mut command: Command, binary: &std::path::Path) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if status.success() {
        return Ok(());
    }
    // The benchmark printed its own error; its exit code is the command's.
    std::process::exit(status.code().unwrap_or(2));
}
