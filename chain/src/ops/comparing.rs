//! `status`: local epochs and batches against the chain's (read only).

use std::path::Path;

use alloy::providers::Provider;
use provdb_storage::{Store, hex32};
use serde::Serialize;

use super::deploying::Deployment;
use super::syncing::pending_batches;
use crate::client::{RetryPolicy, classify_rpc};
use crate::error::Result;

/// One epoch, locally and on chain.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStatus {
    /// Its number.
    pub epoch: u64,
    /// The local root.
    pub local_root: String,
    /// The root on chain (None: not posted yet).
    pub chain_root: Option<String>,
    /// The total, in wei (decimal).
    pub total_wei: String,
    /// The transaction that posted it, when recorded.
    pub tx: Option<String>,
    /// "synced", "pending" (closed here, not on chain) or "diverged".
    pub state: &'static str,
}

/// Local and on-chain state side by side.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// Chain id (as recorded at deploy).
    pub chain_id: u64,
    /// The RPC endpoint used.
    pub rpc_url: String,
    /// AttributionDistributor address.
    pub distributor: String,
    /// ProvenanceRegistry address.
    pub registry: String,
    /// Closed epochs here.
    pub local_epochs: u64,
    /// The chain's last epoch.
    pub chain_last_epoch: u64,
    /// Every epoch, local and chain side.
    pub epochs: Vec<EpochStatus>,
    /// Ingest batches here.
    pub local_batches: u64,
    /// The chain's last anchored sequence number.
    pub chain_last_sequence: u64,
    /// Ingest batches not anchored yet.
    pub pending_batches: u64,
    /// The distributor's balance, in wei (decimal).
    pub distributor_balance_wei: String,
}

/// Local epochs and batches against the chain's (read only).
pub async fn status(
    store: &Store,
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<StatusReport> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let local = store.epochs()?;
    let (chain_last, _) = d.last_epoch().await?;
    let mut epochs = Vec::with_capacity(local.len());
    for epoch in &local {
        let chain_root = if epoch.epoch <= chain_last {
            Some(d.root(epoch.epoch).await?)
        } else {
            None
        };
        let state = match chain_root {
            None => "pending",
            Some(root) if root == epoch.root => "synced",
            Some(_) => "diverged",
        };
        epochs.push(EpochStatus {
            epoch: epoch.epoch,
            local_root: hex32(&epoch.root),
            chain_root: chain_root.as_ref().map(hex32),
            total_wei: epoch.total_wei.to_string(),
            tx: d.state.epochs.get(&epoch.epoch).map(|r| r.tx.clone()),
            state,
        });
    }
    let chain_last_sequence = d.last_sequence().await?;
    let local_batches = pending_batches(store, 0)?.len() as u64;
    let pending = pending_batches(store, chain_last_sequence)?.len() as u64;
    let balance = d
        .client
        .run("eth_getBalance", || async {
            d.client
                .provider
                .get_balance(*d.distributor().address())
                .await
                .map_err(classify_rpc)
        })
        .await?;
    Ok(StatusReport {
        chain_id: d.state.chain_id,
        rpc_url: d.client.url.clone(),
        distributor: d.state.distributor.clone(),
        registry: d.state.registry.clone(),
        local_epochs: local.len() as u64,
        chain_last_epoch: chain_last,
        epochs,
        local_batches,
        chain_last_sequence,
        pending_batches: pending,
        distributor_balance_wei: balance.to_string(),
    })
}
