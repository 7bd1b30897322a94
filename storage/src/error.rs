//! The storage crate's one error type.

use std::path::PathBuf;

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What can go wrong in storage, split into the caller's mistakes, damaged data and bugs.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A Datanet with this name already exists (user error).
    #[error("datanet '{0}' already exists")]
    DatanetExists(String),
    /// No Datanet has this name or id (user error).
    #[error("unknown datanet '{0}'")]
    UnknownDatanet(String),
    /// A record with this id is already stored (user error).
    #[error("duplicate record {0}: a record with this content already exists")]
    DuplicateRecord(String),
    /// A record that was named (by `supersedes`, status change, tombstone) does not exist.
    #[error("unknown record {0}")]
    UnknownRecord(String),
    /// A rule of the data model was broken by the caller (user error).
    #[error("{0}")]
    Invalid(String),
    /// A charge above the account's prepaid balance (user error: the caller must pay in).
    #[error(
        "insufficient funds: account {account} holds {balance_wei} wei and this costs \
         {needed_wei} wei"
    )]
    InsufficientFunds {
        /// The account charged.
        account: crate::model::Address,
        /// What it holds.
        balance_wei: u128,
        /// What was asked of it.
        needed_wei: u128,
    },
    /// RocksDB reported an error while opening or writing the database at `path`.
    #[error("rocksdb error in {path}: {source}")]
    Rocks {
        /// The database directory.
        path: PathBuf,
        /// The underlying error.
        source: rocksdb::Error,
    },
    /// A stored value could not be decoded or failed its check: the database is damaged.
    #[error("corrupt value in column family '{cf}' at key {key}: {reason}")]
    Corruption {
        /// Column family holding the value.
        cf: &'static str,
        /// Hex of the key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// An internal invariant did not hold: a bug in provdb.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StorageError {
    /// True when the error is the caller's (bad input), as opposed to IO, corruption or a bug.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Self::DatanetExists(_)
                | Self::UnknownDatanet(_)
                | Self::DuplicateRecord(_)
                | Self::UnknownRecord(_)
                | Self::Invalid(_)
                | Self::InsufficientFunds { .. }
        )
    }
}
