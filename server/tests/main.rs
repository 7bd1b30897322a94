//! Tests of the `provdb` binary: exit codes, JSON output, and SIGKILL crash recovery.

mod cli;
mod common;
mod crash;
