//! What the benchmarks print and how their errors become exit codes: JSON reports, and the
//! user errors (bad options, missing models or tools) that exit with 1 as `provdb`'s do.

use serde::Serialize;

pub(crate) use provdb_server::UserError;

/// Prints one JSON document on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
