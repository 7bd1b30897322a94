//! The chain commands: deploy the contracts, sync closed epochs and ingest batches, compare
//! local and on-chain state, claim.
//!
//! Invariants:
//! - The local database is only read here; a failure on the chain side never changes it.
//!   Only the chain-state file (`chain.json`, see [`crate::state`]) is written.
//! - Every post is one idempotent step (`step.rs`: read the contract, skip if done, send, wait
//!   for the receipt, check it, record it in `chain.json`), retried whole: it reads the contract
//!   first (`lastEpoch`/`lastTotal`, `lastSequence`, the registry's entries) and sends only
//!   what is still missing; the contracts refuse an epoch or a batch out of order, so a crashed
//!   or repeated sync can neither skip nor double one.
//! - Before posting, the roots already on chain are compared with the local ones: a chain that
//!   holds other roots for the same epochs (another database, a rewritten ledger) is reported
//!   as [`ChainError::Diverged`], and nothing is sent.

mod claiming;
mod comparing;
mod deploying;
mod step;
mod syncing;

pub use claiming::{ClaimReport, claim};
pub use comparing::{EpochStatus, StatusReport, redact_rpc_url, redact_rpc_url_in, status};
pub(crate) use deploying::Deployment;
pub use deploying::{DeployReport, deploy};
pub(crate) use step::{Check, Outcome};
pub use syncing::{AnchoredBatch, PostedEpoch, SyncReport, sync};
