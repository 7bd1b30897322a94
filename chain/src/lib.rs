//! provdb-chain: the ledger's commitments on an EVM chain.
//!
//! Owns the Solidity contracts (`chain/contracts/`: `ProvenanceRegistry` for Datanets, ingest
//! batch roots and adapters; `AttributionDistributor` for deposits in, epoch roots and Merkle
//! claims out, in ETH or an ERC-20 chosen at deploy; `chain/contracts/test/` holds test-only
//! contracts), their compiled artifacts (`chain/artifacts/`, made by
//! `scripts/chain-tools.sh compile`), the alloy bindings generated from them, and the commands
//! that deploy, pay in (deposit, fund), sync, compare and claim ([`ops`]), including the
//! registration of LoRA adapters with their owners, and x402 payments: EIP-3009 authorizations
//! checked here (digest and signer, `authorization.rs`) and settled on chain as deposits for
//! their signers ([`settle_authorization`]), or settled by an outside facilitator and then
//! credited ([`credit_settled_authorization`]); plain token transfers into the distributor are
//! credited to their senders by `sync`. Depends on storage only: it reads closed
//! epochs, their Merkle trees and the ingest log from a [`provdb_storage::Store`], and writes
//! to it only the credits of on-chain deposits ([`provdb_storage::Store::credit`]).
//!
//! Invariants: sync (and a settled authorization, for its own deposit) credits each deposit once, keyed by (chain id, contract, deposit id), after
//! the confirmations asked for, to the account its event names; it posts each closed epoch and
//! each ingest batch of a public Datanet once, in order (a private Datanet is never registered
//! or anchored: no owner, name hash or count of it goes on chain; its contributors claim
//! through the epochs' per-account roots); an epoch carries the ledger head it closed over and
//! is posted only when what was paid in covers its total (the contract refuses it otherwise);
//! it reads the contracts' state before every post, so a crash or an RPC failure at any moment
//! is resumed by running it again, without skipping or doubling (the contracts refuse
//! out-of-order posts). The only local file it writes is `chain.json` in the data directory
//! ([`state`]).

mod adapters;
mod authorization;
pub mod bindings;
mod client;
mod error;
pub mod ops;
pub mod state;

pub use adapters::{AdapterRecord, RegisteredAdapter};
pub use authorization::{
    TokenDomain, TransferAuthorization, authorization_digest, checksummed, recover_authorizer,
    sign_authorization,
};
pub use client::{RetryPolicy, key_address};
pub use error::{ChainError, Result};
pub use ops::{
    ClaimReport, CreditedDepositReport, CreditedTransfer, DeployReport, DepositReport,
    DepositStatus, FundReport, SettledAuthorization, StatusReport, SyncReport, VerifiedEpoch,
    VerifyReport, authorization_used, claim, credit_settled_authorization, deploy, deposit, fund,
    redact_rpc_url, redact_rpc_url_in, settle_authorization, status, sync, token_domain, verify,
};
pub use state::{ChainState, TxRecord};
