//! What kind of failure an error is, told once for every error type the binary meets, and
//! read by both of its reporters: the exit code of a command (`crate::run_command_line`) and the
//! HTTP status of a route (`http::error::ApiError`).
//!
//! Invariant: a kind is decided by the error's own type and variant, never by its text; an
//! error no type here claims is internal.

use std::error::Error as StdError;

use provdb::index::IndexError;
use provdb::inference::InferenceError;
use provdb::query::QueryError;
use provdb::storage::StorageError;
use provdb_chain::ChainError;

use crate::output::UserError;

/// The kinds of failure, by who must act on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller named something that does not exist (or that it may not see): exit code
    /// 1, HTTP 404.
    NotFound,
    /// The caller may not do this: exit code 1, HTTP 403.
    Forbidden,
    /// The answer costs more than the caller allowed, or it has no account to pay with: exit
    /// code 1, HTTP 402 (`payment_required`).
    PaymentRequired,
    /// The caller's balance is short: exit code 1, HTTP 402 (`insufficient_funds`).
    InsufficientFunds,
    /// Any other mistake of the caller: exit code 1, HTTP 400.
    Invalid,
    /// IO, corruption, a failing peer or a bug: exit code 2, HTTP 500 (507 on a full disk).
    Internal,
}

impl ErrorKind {
    /// The process's exit code for a command that failed this way.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::NotFound
            | Self::Forbidden
            | Self::PaymentRequired
            | Self::InsufficientFunds
            | Self::Invalid => 1,
            Self::Internal => 2,
        }
    }

    fn of_user_error(is_user_error: bool) -> Self {
        if is_user_error {
            Self::Invalid
        } else {
            Self::Internal
        }
    }
}

/// An error that knows its kind.
pub trait Classify {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

impl Classify for StorageError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownDatanet(_) | Self::UnknownRecord(_) => ErrorKind::NotFound,
            Self::InsufficientFunds { .. } => ErrorKind::InsufficientFunds,
            e => ErrorKind::of_user_error(e.is_user_error()),
        }
    }
}

impl Classify for provdb::Error {
    fn kind(&self) -> ErrorKind {
        match self {
            // Only storage's own unknown names are "not found": an index or query error that
            // wraps one stays a plain user error (as the HTTP API has always answered).
            Self::Storage(e) => e.kind(),
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::PaymentRequired(_) => ErrorKind::PaymentRequired,
            e => ErrorKind::of_user_error(e.is_user_error()),
        }
    }
}

impl Classify for InferenceError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::of_user_error(self.is_user_error())
    }
}

impl Classify for IndexError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::of_user_error(self.is_user_error())
    }
}

impl Classify for QueryError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::of_user_error(self.is_user_error())
    }
}

impl Classify for ChainError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::of_user_error(self.is_user_error())
    }
}

impl Classify for UserError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// The kind of `cause` when its type is one of the classified ones.
fn kind_of_cause(cause: &(dyn StdError + 'static)) -> Option<ErrorKind> {
    fn as_kind<E: Classify + StdError + 'static>(
        cause: &(dyn StdError + 'static),
    ) -> Option<ErrorKind> {
        cause.downcast_ref::<E>().map(Classify::kind)
    }
    as_kind::<provdb::Error>(cause)
        .or_else(|| as_kind::<InferenceError>(cause))
        .or_else(|| as_kind::<IndexError>(cause))
        .or_else(|| as_kind::<QueryError>(cause))
        .or_else(|| as_kind::<StorageError>(cause))
        .or_else(|| as_kind::<ChainError>(cause))
        .or_else(|| as_kind::<UserError>(cause))
}

/// The kind of the outermost classified error in `error`'s chain of causes (context added on
/// the way up is skipped); internal when none is classified.
pub fn kind_of(error: &anyhow::Error) -> ErrorKind {
    error
        .chain()
        .find_map(kind_of_cause)
        .unwrap_or(ErrorKind::Internal)
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    fn kind(error: impl Into<anyhow::Error>) -> ErrorKind {
        kind_of(&error.into())
    }

    #[test]
    fn unknown_names_are_not_found_and_exit_1() {
        let unknown = || StorageError::UnknownDatanet("nope".into());
        assert_eq!(kind(unknown()), ErrorKind::NotFound);
        assert_eq!(kind(provdb::Error::from(unknown())), ErrorKind::NotFound);
        assert_eq!(
            kind(provdb::Error::NotFound("no epoch".into())),
            ErrorKind::NotFound
        );
        assert_eq!(ErrorKind::NotFound.exit_code(), 1);
    }

    #[test]
    fn an_unknown_name_inside_an_index_error_is_a_plain_user_error() {
        let wrapped = IndexError::Storage(StorageError::UnknownDatanet("nope".into()));
        assert_eq!(kind(provdb::Error::from(wrapped)), ErrorKind::Invalid);
    }

    #[test]
    fn user_errors_exit_1_and_the_rest_exit_2() {
        assert_eq!(kind(UserError("bad flag".into())), ErrorKind::Invalid);
        assert_eq!(
            kind(provdb::Error::Invalid("bad".into())).exit_code(),
            1,
            "a provdb user error"
        );
        assert_eq!(
            kind(provdb::Error::Internal("bug".into())).exit_code(),
            2,
            "a provdb bug"
        );
        assert_eq!(kind(std::io::Error::other("disk")).exit_code(), 2);
        assert_eq!(kind(anyhow::anyhow!("plain text")), ErrorKind::Internal);
    }

    #[test]
    fn context_on_the_way_up_does_not_hide_the_kind() {
        let failed: anyhow::Result<()> = Err(UserError("bad flag".into()).into());
        let error = failed
            .context("while parsing")
            .context("while running")
            .unwrap_err();
        assert_eq!(kind_of(&error), ErrorKind::Invalid);
    }
}
