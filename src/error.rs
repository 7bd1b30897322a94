//! The provdb crate's one error type, split into the caller's mistakes (`is_user_error`),
//! IO and corruption, and bugs.

use std::fmt;
use std::path::PathBuf;

use provdb_index::IndexError;
use provdb_storage::StorageError;

/// Result alias for the embedded API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in an input a problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a JSONL file.
    Line(u64),
    /// 1-based data row of a CSV or Parquet file, or of an Arrow batch (header not counted).
    Row(u64),
    /// The input as a whole.
    Whole,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Row(n) => write!(f, "row {n}"),
            Self::Whole => f.write_str("input"),
        }
    }
}

/// What can go wrong through the embedded API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage failed or refused; `is_user_error` tells which.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Indexing or search failed or refused; `is_user_error` tells which.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The embedder failed or could not be loaded; `is_user_error` tells which.
    #[error(transparent)]
    Inference(#[from] provdb_inference::InferenceError),
    /// An input record is invalid (user error): names the source, where, the column and why.
    #[error("{source_name}: {location}{}: {reason}", column.as_ref().map(|c| format!(", column '{c}'")).unwrap_or_default())]
    Input {
        /// The file name or "arrow batch".
        source_name: String,
        /// Where in it.
        location: Location,
        /// The column at fault, when one is.
        column: Option<String>,
        /// Why it was refused.
        reason: String,
    },
    /// An input decodes to more than a limit allows (user error): names the source, where the
    /// limit was crossed, the limit and the setting that raises it. Nothing of it is stored.
    #[error("{source_name}: {location}: {reason}")]
    TooLarge {
        /// The file name or "arrow batch".
        source_name: String,
        /// Where the limit was crossed.
        location: Location,
        /// Which limit, and how to raise it.
        reason: String,
    },
    /// A request was invalid (user error).
    #[error("{0}")]
    Invalid(String),
    /// What a request named does not exist, such as an epoch's proof for an account without
    /// a balance (user error).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (user error: HTTP 403), such as a reader setting a price.
    #[error("{0}")]
    Forbidden(String),
    /// An answer's price is above what the caller allowed, or it has no account to pay with
    /// (user error: HTTP 402). A short balance is storage's `InsufficientFunds`.
    #[error("{0}")]
    PaymentRequired(String),
    /// No database at this directory (user error).
    #[error("no provdb database in {0}: run `provdb init` first (or pass --data DIR)")]
    NotInitialized(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A SQL query failed; `is_user_error` tells whether it was the query's fault.
    #[error(transparent)]
    Query(#[from] provdb_query::QueryError),
    /// An internal invariant did not hold: a bug in provdb.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// True for the caller's mistakes (bad input, unknown names), false for IO, corruption, bugs.
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_user_error(),
            Self::Query(e) => e.is_user_error(),
            Self::Index(e) => e.is_user_error(),
            Self::Inference(e) => e.is_user_error(),
            Self::Input { .. }
            | Self::TooLarge { .. }
            | Self::Invalid(_)
            | Self::NotFound(_)
            | Self::PaymentRequired(_)
            | Self::Forbidden(_)
            | Self::NotInitialized(_) => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::InvalidData
            ),
            Self::Internal(_) => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
