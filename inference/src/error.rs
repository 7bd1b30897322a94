//! The inference crate's one error type.

use std::path::PathBuf;

/// Result alias for inference.
pub type Result<T, E = InferenceError> = std::result::Result<T, E>;

/// What can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// A file the model needs is not there (user error: wrong directory, models not fetched).
    #[error("{path}: missing ({what}); run scripts/fetch-models.sh or pass a model directory")]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
    },
    /// A model file could not be read or is damaged: names the file and, for a tensor, which.
    #[error("{path}: {reason}")]
    BadModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model's configuration names something provdb does not run.
    #[error("{path}: unsupported model: {reason}")]
    Unsupported {
        /// The configuration file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// A request is invalid (user error), e.g. too many inputs.
    #[error("{0}")]
    Invalid(String),
    /// A file provdb wrote itself (a training checkpoint) fails its checksum or does not
    /// decode: corruption on disk, not the caller's mistake.
    #[error("{path}: corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file provdb owns (checkpoints, trained adapters) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A tensor operation failed while running a loaded model: a bug in provdb.
    #[error("internal error while running {model}: {source}")]
    Compute {
        /// The model's directory or file.
        model: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
}

impl InferenceError {
    /// True for the caller's mistakes (missing files, bad model files given by the user, bad
    /// requests), false for corruption, IO failures and bugs.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Self::Compute { .. } | Self::Corrupt { .. } | Self::Io { .. }
        )
    }
}
