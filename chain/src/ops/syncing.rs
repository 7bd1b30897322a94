//! `sync`: credit plain token transfers into the distributor to their senders
//! (`transfers.rs`), credit the deposits the chain holds with enough confirmations (`crediting.rs`),
//! anchor every ingest batch of a public Datanet and register every owned adapter the chain
//! does not hold yet, then post every closed epoch, in order, reading the contracts before each
//! step. Private Datanets stay off chain: their contributors are paid through the epochs'
//! per-account roots, which name no Datanet.
//!
//! An epoch is posted with the ledger head it closed over and no money: the distributor was
//! paid in by deposits and funding, and refuses an epoch whose total exceeds that
//! (`EpochExceedsDeposits`). Sync reads `totalDeposited` first and stops with
//! [`ChainError::Underfunded`], naming the shortfall and `provdb chain fund`, instead of sending
//! a transaction bound to revert. Epochs come last, so that a shortfall holds back nothing else.

use std::collections::HashMap;
use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256};
use provdb_storage::record_ids_root as records_root;
use provdb_storage::{Address, LogEntry, Store, Visibility, hex32, keccak256};
use serde::Serialize;

use super::crediting::{CreditedDepositReport, covered, credit_deposits};
use super::deploying::Deployment;
use super::step::{Check, Outcome};
use super::transfers::{CreditedTransfer, credit_transfers};
use crate::client::{RetryPolicy, StepError, classify};
use crate::error::{ChainError, Result};

/// One epoch sync posted.
#[derive(Clone, Debug, Serialize)]
pub struct PostedEpoch {
    /// Its number.
    pub epoch: u64,
    /// Its root.
    pub root: String,
    /// Its total (cumulative payouts), in wei (decimal).
    pub total_wei: String,
    /// What it added to the total owed, in wei (decimal; 0 when a crashed run had posted it).
    pub added_wei: String,
    /// The ledger head it closed over, posted with it.
    pub ledger_head: String,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// One ingest batch sync anchored.
#[derive(Clone, Debug, Serialize)]
pub struct AnchoredBatch {
    /// Its database sequence number.
    pub sequence: u64,
    /// Its Datanet.
    pub datanet_id: u32,
    /// Records in it.
    pub records: u32,
    /// Merkle root of their ids.
    pub records_root: String,
    /// The transaction.
    pub tx: String,
    /// Gas used.
    pub gas_used: u64,
}

/// What `sync` did.
#[derive(Clone, Debug, Serialize)]
pub struct SyncReport {
    /// Plain token transfers into the distributor this run credited to their senders (each
    /// became a deposit, in `deposits_credited` once confirmed).
    pub transfers_credited: Vec<CreditedTransfer>,
    /// Plain transfers left uncredited: the distributor does not hold their amounts outside
    /// its count (credited otherwise already; `tx` is empty).
    pub transfers_not_held: Vec<CreditedTransfer>,
    /// Deposits credited by this run, by id.
    pub deposits_credited: Vec<CreditedDepositReport>,
    /// Deposits on chain with the confirmations asked for (all of them credited now).
    pub chain_deposits: u64,
    /// Deposits on chain still short of the confirmations (credited by a later sync).
    pub deposits_unconfirmed: u64,
    /// Everything paid in on chain (deposits and funding), in wei (decimal).
    pub chain_total_deposited_wei: String,
    /// Epochs posted by this run, in order.
    pub epochs_posted: Vec<PostedEpoch>,
    /// Datanets registered by this run.
    pub datanets_registered: Vec<u32>,
    /// Ingest batches anchored by this run, in order.
    pub batches_anchored: Vec<AnchoredBatch>,
    /// Adapters registered by this run (with their owners).
    pub adapters_registered: Vec<crate::adapters::RegisteredAdapter>,
    /// The chain's last epoch afterwards.
    pub chain_last_epoch: u64,
    /// The chain's last anchored sequence number afterwards.
    pub chain_last_sequence: u64,
}

/// Credits every deposit at least `confirmations` blocks deep (1: mined) that the store does
/// not hold, anchors every ingest batch of a public Datanet, registers the `adapters` the chain
/// does not hold, and posts every closed epoch the chain does not have yet, in order, signing
/// with `key` (the operator's). Idempotent (see the module docs).
pub async fn sync(
    store: &Store,
    data_dir: &Path,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
    adapters: &[crate::adapters::AdapterRecord],
    confirmations: u64,
) -> Result<SyncReport> {
    let mut deployment = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let transfers = credit_transfers(data_dir, &mut deployment, confirmations).await?;
    let deposits = credit_deposits(store, data_dir, &mut deployment, confirmations).await?;
    let (datanets_registered, batches_anchored) =
        sync_batches(store, data_dir, &mut deployment).await?;
    let adapters_registered =
        crate::adapters::register(adapters, data_dir, &mut deployment).await?;
    let epochs_posted = sync_epochs(store, data_dir, &mut deployment).await?;
    let (chain_last_epoch, _) = deployment.last_epoch().await?;
    let chain_last_sequence = deployment.last_sequence().await?;
    let total_deposited = deployment.total_deposited().await?;
    Ok(SyncReport {
        transfers_credited: transfers.credited,
        transfers_not_held: transfers.not_held,
        deposits_credited: deposits.credited,
        chain_deposits: deposits.confirmed,
        deposits_unconfirmed: deposits.unconfirmed,
        chain_total_deposited_wei: total_deposited.to_string(),
        epochs_posted,
        datanets_registered,
        batches_anchored,
        adapters_registered,
        chain_last_epoch,
        chain_last_sequence,
    })
}

async fn sync_epochs(
    store: &Store,
    data_dir: &Path,
    d: &mut Deployment,
) -> Result<Vec<PostedEpoch>> {
    let local = store.epochs()?;
    let (chain_last, _) = d.check_epochs(&local).await?;
    // Recover the hashes of posts a crashed run sent but did not record.
    let mut recovered = false;
    for number in 1..=chain_last {
        if !d.state.epochs.contains_key(&number)
            && let Some(record) = d.find_epoch_tx(number).await?
        {
            d.state.epochs.insert(number, record);
            recovered = true;
        }
    }
    if recovered {
        d.state.save(data_dir)?;
    }
    let mut posted = Vec::new();
    for epoch in local.iter().filter(|e| e.epoch > chain_last) {
        let operation = format!("post epoch {}", epoch.epoch);
        let outcome = d
            .transact(
                &operation,
                async |d, _| {
                    let dist = d.distributor();
                    let on_chain = dist
                        .lastEpoch()
                        .call()
                        .await
                        .map_err(|e| classify("lastEpoch", e))?;
                    if on_chain >= epoch.epoch {
                        // An earlier attempt got through before its receipt was seen.
                        return Ok(Check::Done(0));
                    }
                    let previous = dist
                        .lastTotal()
                        .call()
                        .await
                        .map_err(|e| classify("lastTotal", e))?;
                    let added = epoch.total_wei.checked_sub(previous).ok_or_else(|| {
                        StepError::Fatal(ChainError::Invalid(format!(
                            "epoch {} totals {} wei, less than the {previous} wei on chain",
                            epoch.epoch, epoch.total_wei
                        )))
                    })?;
                    let deposited = dist
                        .totalDeposited()
                        .call()
                        .await
                        .map_err(|e| classify("totalDeposited", e))?;
                    covered(epoch.epoch, epoch.total_wei, deposited)?;
                    Ok(Check::Send(added))
                },
                |d, _| {
                    d.distributor().postEpoch(
                        U256::from(epoch.epoch),
                        B256::from(epoch.root),
                        U256::from(epoch.total_wei),
                        B256::from(epoch.ledger_head),
                    )
                },
            )
            .await?;
        // Recorded in both cases: a post that got through unseen is found by its event.
        let (record, gas_used, added) = match outcome {
            Outcome::Sent {
                receipt,
                record,
                value: added,
            } => (record, receipt.gas_used, added),
            Outcome::Done(_) => match d.find_epoch_tx(epoch.epoch).await? {
                Some(record) => (record, 0, 0),
                None => continue,
            },
        };
        d.keep(data_dir, |state| {
            state.epochs.insert(epoch.epoch, record.clone());
        })?;
        posted.push(PostedEpoch {
            epoch: epoch.epoch,
            root: hex32(&epoch.root),
            total_wei: epoch.total_wei.to_string(),
            added_wei: added.to_string(),
            ledger_head: hex32(&epoch.ledger_head),
            tx: record.tx,
            gas_used,
        });
    }
    Ok(posted)
}

pub(crate) struct PendingBatch {
    sequence: u64,
    datanet_id: u32,
    records: u32,
    root: [u8; 32],
}

/// The ingest batches after sequence `after` that the chain may hold: those of public
/// Datanets. A private Datanet is never registered and its batches never anchored, so the
/// chain shows neither its owner, its name's hash, nor its record counts (a Datanet's
/// visibility never changes, so none of its batches is ever due later).
pub(crate) fn pending_batches(store: &Store, after: u64) -> Result<Vec<PendingBatch>> {
    let mut out = Vec::new();
    let mut public = HashMap::new();
    for (sequence, entry) in store.log_since(after)? {
        if let LogEntry::Ingest {
            datanet_id,
            record_ids,
            ..
        } = entry
        {
            let Some(root) = records_root(&record_ids) else {
                continue;
            };
            if !is_public(store, &mut public, datanet_id)? {
                continue;
            }
            let records = u32::try_from(record_ids.len()).map_err(|_| {
                ChainError::Invalid(format!("batch {sequence} holds more than 2^32 records"))
            })?;
            out.push(PendingBatch {
                sequence,
                datanet_id,
                records,
                root,
            });
        }
    }
    Ok(out)
}

/// Whether Datanet `id` is public, remembered in `known`.
fn is_public(store: &Store, known: &mut HashMap<u32, bool>, id: u32) -> Result<bool> {
    if let Some(public) = known.get(&id) {
        return Ok(*public);
    }
    let public = store.datanet_by_id(id)?.visibility == Visibility::Public;
    known.insert(id, public);
    Ok(public)
}

async fn sync_batches(
    store: &Store,
    data_dir: &Path,
    d: &mut Deployment,
) -> Result<(Vec<u32>, Vec<AnchoredBatch>)> {
    let chain_last = d.last_sequence().await?;
    let batches = pending_batches(store, chain_last)?;
    let mut registered = Vec::new();
    let mut anchored = Vec::new();
    for batch in batches {
        let datanet = store.datanet_by_id(batch.datanet_id)?;
        let registration = d
            .step(
                data_dir,
                &format!("register Datanet {}", batch.datanet_id),
                async |d, _| {
                    let info = d
                        .registry()
                        .datanets(batch.datanet_id)
                        .call()
                        .await
                        .map_err(|e| classify("datanets", e))?;
                    Ok(Check::done_if(info.registered))
                },
                |d, ()| {
                    let owner = EvmAddress::from(datanet.owner.unwrap_or(Address([0; 20])).0);
                    let metadata = B256::from(keccak256(datanet.name.as_bytes()));
                    d.registry()
                        .registerDatanet(batch.datanet_id, owner, metadata)
                },
                |state, record| {
                    state.datanets.insert(batch.datanet_id, record);
                },
            )
            .await?;
        if let Outcome::Sent { .. } = registration {
            registered.push(batch.datanet_id);
        }

        let anchoring = d
            .step(
                data_dir,
                &format!("anchor batch {}", batch.sequence),
                async |d, _| {
                    let last = d
                        .registry()
                        .lastSequence()
                        .call()
                        .await
                        .map_err(|e| classify("lastSequence", e))?;
                    Ok(Check::done_if(last >= batch.sequence))
                },
                |d, ()| {
                    d.registry().anchorBatch(
                        batch.datanet_id,
                        batch.sequence,
                        batch.sequence,
                        B256::from(batch.root),
                        batch.records,
                    )
                },
                |state, record| {
                    state.batches.insert(batch.sequence, record);
                },
            )
            .await?;
        if let Outcome::Sent {
            receipt, record, ..
        } = anchoring
        {
            anchored.push(AnchoredBatch {
                sequence: batch.sequence,
                datanet_id: batch.datanet_id,
                records: batch.records,
                records_root: hex32(&batch.root),
                tx: record.tx,
                gas_used: receipt.gas_used,
            });
        }
    }
    Ok((registered, anchored))
}
