//! provdb-chain: the ledger's commitments on an EVM chain.
//!
//! Will own: the Solidity contracts (provenance registry, epoch distributor with Merkle
//! claims), their alloy bindings, and the sync that posts each closed epoch and ingest batch
//! exactly once, in order, resuming after a crash without skipping or doubling. Depends on
//! storage.
