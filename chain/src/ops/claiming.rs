//! `claim`: an account's proof from the local epoch tree, submitted to the distributor.

use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256};
use provdb_storage::{Address, Store, hex32};
use serde::Serialize;

use super::deploying::Deployment;
use super::step::{Check, Outcome};
use crate::client::{RetryPolicy, classify};
use crate::error::{ChainError, Result};

/// What a claim paid.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimReport {
    /// The epoch whose root the proof was checked against (the chain's last).
    pub epoch: u64,
    /// Who was paid.
    pub account: String,
    /// Its cumulative balance in that epoch (decimal wei).
    pub cumulative_wei: String,
    /// What this claim paid (decimal wei).
    pub paid_wei: String,
    /// The proof submitted.
    pub proof: Vec<String>,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// Claims what `account` is owed by the chain's last epoch (its proof built from the local
/// epoch tree), paid to `account`, sent and paid for by `key`'s account.
pub async fn claim(
    store: &Store,
    data_dir: &Path,
    account: Address,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<ClaimReport> {
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let (epoch, _) = d.last_epoch().await?;
    if epoch == 0 {
        return Err(ChainError::Invalid(
            "no epoch is on chain yet: close one and run `provdb chain sync`".into(),
        ));
    }
    let tree = store.epoch_tree(epoch)?;
    let chain_root = d.root(epoch).await?;
    if chain_root != tree.root() {
        return Err(ChainError::Diverged {
            epoch,
            what: "root",
            chain: hex32(&chain_root),
            local: hex32(&tree.root()),
        });
    }
    let (Some(cumulative), Some(proof)) = (tree.amount(&account), tree.proof(&account)) else {
        return Err(ChainError::Invalid(format!(
            "{account} has no balance in epoch {epoch}"
        )));
    };
    let evm_account = EvmAddress::from(account.0);
    let proof_b256: Vec<B256> = proof.iter().map(|p| B256::from(*p)).collect();
    let operation = format!("claim for {account}");
    let outcome = d
        .transact(
            &operation,
            async |d, sent_before| {
                let already = d
                    .distributor()
                    .claimed(evm_account)
                    .call()
                    .await
                    .map_err(|e| classify("claimed", e))?;
                // Claimed in full before this claim sent anything: refused below. After a
                // send whose receipt was lost, the claim is sent again and the contract
                // decides.
                if already >= U256::from(cumulative) && !sent_before {
                    return Ok(Check::Done(already));
                }
                Ok(Check::Send(already))
            },
            |d, _| {
                d.distributor().claim(
                    U256::from(epoch),
                    evm_account,
                    U256::from(cumulative),
                    proof_b256.clone(),
                )
            },
        )
        .await?;
    let (receipt, already) = match outcome {
        Outcome::Sent { receipt, value, .. } => (receipt, value),
        Outcome::Done(already) => {
            return Err(ChainError::Reverted {
                operation,
                reason: format!("AlreadyClaimed {{ account: {evm_account}, claimed: {already} }}"),
            });
        }
    };
    // U256's `-` wraps: a stale `already` above the cumulative amount is named instead.
    let paid = U256::from(cumulative).checked_sub(already).ok_or_else(|| {
        ChainError::Invalid(format!(
            "{evm_account} had claimed {already} wei, more than the cumulative {cumulative} wei \
             of epoch {epoch}"
        ))
    })?;
    Ok(ClaimReport {
        epoch,
        account: account.to_string(),
        cumulative_wei: cumulative.to_string(),
        paid_wei: paid.to_string(),
        proof: proof.iter().map(hex32).collect(),
        tx: format!("{}", receipt.transaction_hash),
        gas_used: receipt.gas_used,
    })
}
