//! The chain commands: deploy the contracts, pay in (deposit, fund, an x402 authorization
//! settled as a deposit), sync (credit deposits, anchor ingest batches, register adapters, post
//! closed epochs), compare local and on-chain state, verify the ledger against the chain, claim.
//!
//! Invariants:
//! - The local database is read here and written in one way only: `sync`, and
//!   `settle_authorization` / `credit_settled_authorization` for the deposit it made, credit each on-chain deposit once
//!   (`crediting.rs`; storage keys the credit by chain id, contract and deposit id). A failure on the chain side changes nothing else. Besides, only the
//!   chain-state file (`chain.json`, see [`crate::state`]) is written.
//! - A payment (deposit, fund, settled authorization) is sent exactly once (`Client::send_once`); an epoch is posted
//!   only when the deposits cover its total, with the ledger head it closed over.
//! - Every post is one idempotent step (`step.rs`: read the contract, skip if done, send, wait
//!   for the receipt, check it, record it in `chain.json`), retried whole: it reads the contract
//!   first (`lastEpoch`/`lastTotal`, `lastSequence`, the registry's entries) and sends only
//!   what is still missing; the contracts refuse an epoch or a batch out of order, so a crashed
//!   or repeated sync can neither skip nor double one.
//! - Before posting, the roots already on chain are compared with the local ones: a chain that
//!   holds other roots for the same epochs (another database, a rewritten ledger) is reported
//!   as [`ChainError::Diverged`], and nothing is sent.

mod authorizing;
mod claiming;
mod comparing;
mod crediting;
mod deploying;
mod depositing;
mod step;
mod syncing;
mod transfers;
mod verifying;

pub use authorizing::{
    SettledAuthorization, authorization_used, settle_authorization, token_domain,
};
pub use claiming::{ClaimReport, claim};
pub use comparing::{
    DepositStatus, EpochStatus, StatusReport, redact_rpc_url, redact_rpc_url_in, status,
};
pub use crediting::CreditedDepositReport;
pub(crate) use deploying::Deployment;
pub use deploying::{DeployReport, deploy};
pub use depositing::{DepositReport, FundReport, deposit, fund};
pub(crate) use step::{Check, Outcome};
pub use syncing::{AnchoredBatch, PostedEpoch, SyncReport, sync};
pub use transfers::{CreditedTransfer, credit_settled_authorization};
pub use verifying::{VerifiedEpoch, VerifyReport, verify};
