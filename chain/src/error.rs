//! The chain crate's errors: user errors (bad input, nothing deployed, a transaction the
//! contracts refuse), RPC failures (after retries), divergence between the local ledger and the
//! chain, and IO on the chain-state file.

use std::path::PathBuf;

use provdb_storage::StorageError;

/// Result alias of this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Bad input from the caller (an address, a key, a URL, an epoch without the account).
    #[error("{0}")]
    Invalid(String),
    /// No contracts are deployed for this database yet.
    #[error(
        "no contracts are deployed for this database ({0} is missing); run `provdb chain deploy` first"
    )]
    NotDeployed(PathBuf),
    /// The contracts are already deployed (deploy refuses to replace them silently).
    #[error("contracts are already deployed ({0}); pass --force to deploy new ones")]
    AlreadyDeployed(PathBuf),
    /// A contract refused a transaction or call: the named custom error, or the node's message.
    #[error("{operation} reverted: {reason}")]
    Reverted {
        /// What was attempted.
        operation: String,
        /// The contract's custom error (e.g. `AlreadyClaimed(..)`) or the node's message.
        reason: String,
    },
    /// The RPC endpoint failed (unreachable, timed out, malformed answer) after every retry.
    #[error("RPC {url} failed during {operation} after {attempts} attempt(s): {message}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// What was attempted.
        operation: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// The chain holds something else than the local ledger for the same epoch.
    #[error(
        "epoch {epoch} on chain has root {chain_root}, the local ledger has {local_root}: \
         the chain and this database diverge"
    )]
    Diverged {
        /// The epoch.
        epoch: u64,
        /// The root the contract stores.
        chain_root: String,
        /// The root the local ledger computed.
        local_root: String,
    },
    /// The chain-state file could not be read or written, or is damaged.
    #[error("chain state {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The local database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ChainError {
    /// True for mistakes of the caller (exit code 1), false for IO, RPC and internal failures.
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Invalid(_)
            | Self::NotDeployed(_)
            | Self::AlreadyDeployed(_)
            | Self::Reverted { .. } => true,
            Self::Storage(e) => e.is_user_error(),
            Self::Rpc { .. } | Self::Diverged { .. } | Self::State { .. } => false,
        }
    }
}
