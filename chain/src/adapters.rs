//! Registering LoRA adapters in the `ProvenanceRegistry`: id (the hash of its files), owner,
//! base-model hash and training-data root (the Merkle root of the record ids a Model Factory
//! adapter trained on; zero for an adapter added from outside). Each registration reads the registry first, so a repeated or resumed sync
//! registers nothing twice; adapters without an owner are not registered (the registry keys
//! "registered" on a non-zero owner).

use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256};
use provdb_storage::hex32;
use serde::Serialize;

use crate::client::classify;
use crate::error::Result;
use crate::ops::{Check, Deployment, Outcome};

/// An adapter the database holds, as the registry records it.
#[derive(Clone, Debug)]
pub struct AdapterRecord {
    /// Its id.
    pub id: [u8; 32],
    /// Its owner.
    pub owner: [u8; 20],
    /// keccak256 of its base model's files.
    pub base_model: [u8; 32],
    /// Merkle root of the record ids it was trained on (zero when unknown).
    pub training_root: [u8; 32],
}

/// One adapter a sync registered.
#[derive(Clone, Debug, Serialize)]
pub struct RegisteredAdapter {
    /// Its id.
    pub id: String,
    /// Its owner.
    pub owner: String,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// Registers every adapter of `adapters` the registry does not hold yet.
pub(crate) async fn register(
    adapters: &[AdapterRecord],
    data_dir: &Path,
    d: &mut Deployment,
) -> Result<Vec<RegisteredAdapter>> {
    let mut registered = Vec::new();
    for adapter in adapters {
        let id = hex32(&adapter.id);
        if d.state.adapters.contains_key(&id) {
            continue;
        }
        let outcome = d
            .step(
                data_dir,
                &format!("register adapter {id}"),
                async |d, _| {
                    let on_chain = d
                        .registry()
                        .adapters(B256::from(adapter.id))
                        .call()
                        .await
                        .map_err(|e| classify("adapters", e))?;
                    Ok(Check::done_if(on_chain.owner != EvmAddress::ZERO))
                },
                |d, ()| {
                    d.registry().registerAdapter(
                        B256::from(adapter.id),
                        EvmAddress::from(adapter.owner),
                        B256::from(adapter.base_model),
                        B256::from(adapter.training_root),
                    )
                },
                |state, record| {
                    state.adapters.insert(id.clone(), record);
                },
            )
            .await?;
        if let Outcome::Sent {
            receipt, record, ..
        } = outcome
        {
            registered.push(RegisteredAdapter {
                id,
                owner: format!("0x{}", hex::encode(adapter.owner)),
                tx: record.tx,
                gas_used: receipt.gas_used,
            });
        }
    }
    Ok(registered)
}
