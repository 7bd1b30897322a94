//! provdb-chain: the ledger's commitments on an EVM chain.
//!
//! Owns the Solidity contracts (`chain/contracts/`: `ProvenanceRegistry` for Datanets, ingest
//! batch roots and adapters; `AttributionDistributor` for epoch roots and Merkle claims),
//! their compiled artifacts (`chain/artifacts/`, made by `scripts/chain-tools.sh compile`),
//! the alloy bindings generated from them, and the commands that deploy, sync, compare and
//! claim ([`ops`]), including the registration of LoRA adapters with their owners. Depends on storage only: it reads closed epochs, their Merkle trees and
//! the ingest log from a [`provdb_storage::Store`], and never writes to it.
//!
//! Invariants: sync posts each closed epoch and each ingest batch of a public Datanet once, in
//! order (a private Datanet is never registered or anchored: no owner, name hash or count of
//! it goes on chain; its contributors claim through the epochs' per-account roots); it reads the
//! contracts' state before every post, so a crash or an RPC failure at any moment is resumed by
//! running it again, without skipping or doubling (the contracts refuse out-of-order posts).
//! The only local file it writes is `chain.json` in the data directory ([`state`]).

mod adapters;
pub mod bindings;
mod client;
mod error;
pub mod ops;
pub mod state;

pub use adapters::{AdapterRecord, RegisteredAdapter};
pub use client::RetryPolicy;
pub use error::{ChainError, Result};
pub use ops::{
    ClaimReport, DeployReport, StatusReport, SyncReport, claim, deploy, redact_rpc_url,
    redact_rpc_url_in, status, sync,
};
pub use state::{ChainState, TxRecord};
