//! What the benchmarks print and how their errors become exit codes: JSON reports, and the
//! user errors (bad options, missing models or tools) that exit with 1 as `provdb`'s do.

use std::fmt;

use serde::Serialize;

/// A mistake in the command line or the machine's setup (exit code 1).
#[derive(Debug)]
pub(crate) struct UserError(pub(crate) String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Prints one JSON document on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Whether the first error in the chain that knows its kind calls it the user's (exit code 1
/// rather than 2, as the `provdb` binary decides).
pub(crate) fn is_user_error(error: &anyhow::Error) -> bool {
    error.chain().find_map(kind_of).unwrap_or(false)
}

/// `Some(user error?)` for the error types that know their kind, `None` for the others.
fn kind_of(cause: &(dyn std::error::Error + 'static)) -> Option<bool> {
    if cause.is::<UserError>() {
        return Some(true);
    }
    if let Some(e) = cause.downcast_ref::<provdb::Error>() {
        return Some(e.is_user_error());
    }
    if let Some(e) = cause.downcast_ref::<provdb::inference::InferenceError>() {
        return Some(e.is_user_error());
    }
    if let Some(e) = cause.downcast_ref::<provdb::index::IndexError>() {
        return Some(e.is_user_error());
    }
    cause
        .downcast_ref::<provdb_chain::ChainError>()
        .map(provdb_chain::ChainError::is_user_error)
}
