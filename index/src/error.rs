//! The index crate's one error type.

use std::path::PathBuf;

use provdb_storage::StorageError;

/// Result alias for the index crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// What can go wrong while indexing or searching.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the storage log, records or chunks failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A search or configuration request was invalid (user error).
    #[error("{0}")]
    Invalid(String),
    /// Vector search was asked for but no embedder is configured (user error).
    #[error("vector search needs an embedder: {0}")]
    NoEmbedder(String),
    /// The embedder failed on a text.
    #[error("embedding failed: {0}")]
    Embed(String),
    /// A file of the index could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file of the index is damaged: it can be deleted and rebuilt from storage.
    #[error("{path}: corrupt index file ({reason}); delete the index directory to rebuild it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the offset when known.
        reason: String,
    },
    /// tantivy failed.
    #[error("full-text index {path}: {source}")]
    Tantivy {
        /// The index directory.
        path: PathBuf,
        /// tantivy's error.
        source: tantivy::TantivyError,
    },
    /// An internal invariant did not hold: a bug in provdb.
    #[error("internal index error: {0}")]
    Internal(String),
}

impl IndexError {
    /// True for the caller's mistakes, false for IO, corruption and bugs.
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_user_error(),
            Self::Invalid(_) | Self::NoEmbedder(_) => true,
            Self::Embed(_)
            | Self::Io { .. }
            | Self::Corrupt { .. }
            | Self::Tantivy { .. }
            | Self::Internal(_) => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn tantivy(path: impl Into<PathBuf>) -> impl FnOnce(tantivy::TantivyError) -> Self {
        let path = path.into();
        move |source| Self::Tantivy { path, source }
    }
}
