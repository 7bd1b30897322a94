//! The chain-state file `<data dir>/chain.json`: where this database's contracts live and the
//! transactions sync has sent. It is a record, not the source of truth: sync and claim read
//! the contracts' own state (`lastEpoch`, `lastSequence`) before acting, so a lost or stale
//! file never makes them skip or double a post; the only thing it alone knows is the contract
//! addresses (and the asset the distributor was deployed with). Deposits are credited once by
//! storage (keyed by chain id, contract and deposit id), so the scan cursor kept here only
//! saves work: lost, the next sync scans from the deployment block again.
//!
//! Invariants: the file is written whole (to a temporary file, fsynced, renamed over the old
//! one, directory fsynced) and carries the keccak256 of its body, checked on every read; a
//! damaged file is reported, never guessed at.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use alloy::rpc::types::TransactionReceipt;
use provdb_storage::{hex32, keccak256};
use serde::{Deserialize, Serialize};

use crate::error::{ChainError, Result};

/// The file's name in the data directory.
pub const STATE_FILE: &str = "chain.json";

/// A transaction sync sent and saw mined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Its hash (0x-hex).
    pub tx: String,
    /// The block it was mined in (None when recovered from an event without one).
    pub block: Option<u64>,
    /// Gas it used (None when recovered from an event).
    pub gas_used: Option<u64>,
}

impl TxRecord {
    /// The record of a mined transaction, from its receipt.
    pub(crate) fn of(receipt: &TransactionReceipt) -> Self {
        Self {
            tx: format!("{}", receipt.transaction_hash),
            block: receipt.block_number,
            gas_used: Some(receipt.gas_used),
        }
    }
}

/// What the file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The RPC endpoint the contracts were deployed through (the default for later commands).
    pub rpc_url: String,
    /// The chain id they live on.
    pub chain_id: u64,
    /// The operator (deployer) address.
    pub operator: String,
    /// The AttributionDistributor's address.
    pub distributor: String,
    /// The ProvenanceRegistry's address.
    pub registry: String,
    /// The ERC-20 the distributor takes and pays (None: ETH).
    #[serde(default)]
    pub token: Option<String>,
    /// The block of the deployment (where event scans start).
    pub deploy_block: u64,
    /// Epoch number → the transaction that posted it.
    #[serde(default)]
    pub epochs: BTreeMap<u64, TxRecord>,
    /// Database sequence number → the transaction that anchored that ingest batch.
    #[serde(default)]
    pub batches: BTreeMap<u64, TxRecord>,
    /// Datanet id → the transaction that registered it.
    #[serde(default)]
    pub datanets: BTreeMap<u32, TxRecord>,
    /// Adapter id (0x hex) → the transaction that registered it.
    #[serde(default)]
    pub adapters: BTreeMap<String, TxRecord>,
    /// The last block whose `Deposited` events are all credited (None: scan from
    /// `deploy_block`).
    #[serde(default)]
    pub deposits_scanned_block: Option<u64>,
    /// The last block whose plain token transfers into the distributor are all credited
    /// (None: scan from `deploy_block`).
    #[serde(default)]
    pub transfers_scanned_block: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    body: serde_json::Value,
    keccak256: String,
}

fn state_error(path: &Path, reason: impl ToString) -> ChainError {
    ChainError::State {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The state file's path in `data_dir`.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

impl ChainState {
    /// Reads the state of the database in `data_dir`; [`ChainError::NotDeployed`] when there is
    /// none.
    pub fn load(data_dir: &Path) -> Result<Self> {
        Self::load_optional(data_dir)?.ok_or_else(|| ChainError::NotDeployed(state_path(data_dir)))
    }

    /// Reads the state, `None` when no file exists.
    pub fn load_optional(data_dir: &Path) -> Result<Option<Self>> {
        let path = state_path(data_dir);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(&path, e)),
        };
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| state_error(&path, e))?;
        let body = serde_json::to_vec(&envelope.body).map_err(|e| state_error(&path, e))?;
        let expected = hex32(&keccak256(&body));
        if expected != envelope.keccak256 {
            return Err(state_error(
                &path,
                format!(
                    "checksum mismatch (stored {}, computed {expected}): the file is damaged",
                    envelope.keccak256
                ),
            ));
        }
        let state = serde_json::from_value(envelope.body).map_err(|e| state_error(&path, e))?;
        Ok(Some(state))
    }

    /// Writes the state atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let path = state_path(data_dir);
        let body = serde_json::to_value(self).map_err(|e| state_error(&path, e))?;
        let body_bytes = serde_json::to_vec(&body).map_err(|e| state_error(&path, e))?;
        let envelope = Envelope {
            keccak256: hex32(&keccak256(&body_bytes)),
            body,
        };
        let text = serde_json::to_vec_pretty(&envelope).map_err(|e| state_error(&path, e))?;
        let tmp = data_dir.join(format!("{STATE_FILE}.tmp"));
        let mut file = fs_err::File::create(&tmp).map_err(|e| state_error(&tmp, e))?;
        file.write_all(&text).map_err(|e| state_error(&tmp, e))?;
        file.sync_all().map_err(|e| state_error(&tmp, e))?;
        drop(file);
        fs_err::rename(&tmp, &path).map_err(|e| state_error(&path, e))?;
        if let Ok(dir) = fs_err::File::open(data_dir) {
            // A failed directory fsync leaves the old file or the new one, both whole.
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test fails loudly on purpose")]

    use super::*;

    fn sample() -> ChainState {
        ChainState {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 31337,
            operator: "0x01".into(),
            distributor: "0x02".into(),
            registry: "0x03".into(),
            token: None,
            deploy_block: 1,
            epochs: BTreeMap::from([(
                1,
                TxRecord {
                    tx: "0xaa".into(),
                    block: Some(2),
                    gas_used: Some(50_000),
                },
            )]),
            batches: BTreeMap::new(),
            datanets: BTreeMap::new(),
            adapters: BTreeMap::new(),
            deposits_scanned_block: Some(7),
            transfers_scanned_block: Some(7),
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ChainState::load_optional(dir.path()).unwrap().is_none());
        assert!(matches!(
            ChainState::load(dir.path()),
            Err(ChainError::NotDeployed(_))
        ));
        let state = sample();
        state.save(dir.path()).unwrap();
        assert_eq!(ChainState::load(dir.path()).unwrap(), state);

        let path = state_path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("31337", "31338")).unwrap();
        let err = ChainState::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
