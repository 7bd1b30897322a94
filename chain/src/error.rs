//! The chain crate's errors: user errors (bad input, nothing deployed, a transaction the
//! contracts refuse, an epoch the deposits do not cover), RPC failures (after retries, a node
//! that does not show every deposit, a transaction short of its confirmations), divergence
//! between the local ledger and the chain, and IO on the chain-state file.

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
        "epoch {epoch} on chain has {what} {chain}, the local ledger has {local}: \
         the chain and this database diverge"
    )]
    Diverged {
        /// The epoch.
        epoch: u64,
        /// What differs: "root" or "ledger head".
        what: &'static str,
        /// What the contract stores.
        chain: String,
        /// What the local ledger computed.
        local: String,
    },
    /// An epoch owes more than the distributor was paid in: posting it would revert with
    /// `EpochExceedsDeposits`, so it is not sent.
    #[error(
        "epoch {epoch} owes {total_wei} wei in all, but the distributor was paid in only \
         {deposited_wei} wei (deposits and funding): {shortfall_wei} wei short. Credits given \
         off chain (`provdb account credit`) must be backed on chain: run `provdb chain fund \
         {shortfall_wei}` with the operator's key (or wait for deposits), then sync again"
    )]
    Underfunded {
        /// The epoch.
        epoch: u64,
        /// Its total (cumulative payouts), in wei.
        total_wei: u128,
        /// The contract's `totalDeposited`, in wei.
        deposited_wei: u128,
        /// `total_wei - deposited_wei`.
        shortfall_wei: u128,
    },
    /// The node shows fewer `Deposited` events than the contract counts deposits: some cannot
    /// be credited yet (a node that pruned its logs, or answered a log query incompletely).
    #[error(
        "the distributor counts {expected} deposits by block {block}, but the node at {url} \
         shows no Deposited event for deposit id(s) {missing}: nothing was lost (the rest are \
         credited, and these will be once a node shows them); use a node that keeps every log \
         since the deployment (block {deploy_block})"
    )]
    MissingDeposits {
        /// The endpoint.
        url: String,
        /// `nextDepositId` at `block`.
        expected: u64,
        /// The last confirmed block scanned.
        block: u64,
        /// The first ids missing (at most ten), comma-separated.
        missing: String,
        /// Where scans start.
        deploy_block: u64,
    },
    /// A transaction was mined but did not reach the confirmations asked for in time (or left
    /// the chain in a reorganisation): nothing was credited for it; `sync` credits its deposit
    /// once it has them (x402's `settlement_pending`).
    #[error(
        "{operation}: transaction {tx} (block {}) has not reached {confirmations} \
         confirmation(s) yet; nothing is credited until then (provdb chain sync credits it)",
        block.map_or_else(|| "none: not in the chain now".to_string(), |b| b.to_string())
    )]
    Unconfirmed {
        /// What was attempted.
        operation: String,
        /// The transaction (0x hash).
        tx: String,
        /// The block it was last seen in (None: no node shows it now).
        block: Option<u64>,
        /// The confirmations asked for.
        confirmations: u64,
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
            | Self::Reverted { .. }
            | Self::Underfunded { .. } => true,
            Self::Storage(e) => e.is_user_error(),
            Self::Rpc { .. }
            | Self::MissingDeposits { .. }
            | Self::Unconfirmed { .. }
            | Self::Diverged { .. }
            | Self::State { .. } => false,
        }
    }
}
