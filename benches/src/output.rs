//! What the benchmarks print and how their errors become exit codes: JSON reports, and the
//! user errors (bad options, missing models or tools) that exit with 1 as `provdb`'s do.

use serde::Serialize;

pub(crate) use provdb_server::UserError;

/// Prints one JSON document on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The exit code of a failed benchmark, decided as the `provdb` binary decides it (1 for the
/// user's mistakes, 2 for the rest).
pub(crate) fn exit_code(error: &anyhow::Error) -> u8 {
    provdb_server::kind_of(error).exit_code()
}
