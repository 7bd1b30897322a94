//! Crediting the distributor's deposits: `sync` reads the `Deposited` events of blocks that
//! have the confirmations asked for and credits each deposit to the account its event names
//! (never its sender), through [`Store::credit`]; a settled x402 authorization credits its own
//! deposit through the same [`credit_once`] (`authorizing.rs`).
//!
//! Invariants:
//! - A deposit is credited at most once: storage keys it by (chain id, contract, deposit id)
//!   and commits the deposit's row with its credit entry in one write, skipping a key it holds;
//!   a sync killed at any moment, or a node that answers a log query twice, credits nothing
//!   twice.
//! - Only deposits in blocks at least `confirmations` deep are credited (a block is one
//!   confirmation deep once mined), so a reorganisation shallower than that never leaves a
//!   credit without its deposit.
//! - After a scan every deposit id below the contract's `nextDepositId` (read at the last
//!   confirmed block) is credited, or the scan fails naming the ids the node did not show
//!   ([`ChainError::MissingDeposits`]); only then does the scan cursor in `chain.json` move, so a
//!   deposit is never passed over.

use std::collections::BTreeSet;
use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{BlockId, Filter, Log};
use alloy::sol_types::SolEvent;
use provdb_storage::{Address, CreditSource, Deposit, DepositKey, Store, hex32};
use serde::Serialize;

use super::deploying::Deployment;
use crate::bindings::AttributionDistributor;
use crate::client::{StepError, classify, classify_rpc};
use crate::error::{ChainError, Result};

/// Blocks per `eth_getLogs` query (public endpoints refuse wide ranges).
const LOG_CHUNK_BLOCKS: u64 = 5_000;

/// One deposit a sync credited.
#[derive(Clone, Debug, Serialize)]
pub struct CreditedDepositReport {
    /// The contract's id of it.
    pub deposit_id: u64,
    /// The account credited (the one the event names).
    pub account: String,
    /// Who paid it.
    pub from: String,
    /// The amount, in wei (or the token's smallest unit; decimal).
    pub amount_wei: String,
    /// The transaction that made it.
    pub tx: String,
    /// Its block.
    pub block: u64,
}

/// What one scan did.
pub(crate) struct DepositScan {
    /// Deposits credited by this scan, by id.
    pub(crate) credited: Vec<CreditedDepositReport>,
    /// Deposits on chain with enough confirmations (`nextDepositId` at the last confirmed
    /// block).
    pub(crate) confirmed: u64,
    /// Deposits on chain still short of the confirmations.
    pub(crate) unconfirmed: u64,
}

fn money(value: U256, what: &str) -> Result<u128> {
    u128::try_from(value)
        .map_err(|_| ChainError::Invalid(format!("{what} on chain is 2^128 or more: {value}")))
}

impl Deployment {
    /// The distributor as storage names it.
    pub(crate) fn contract(&self) -> Address {
        Address(self.distributor().address().into_array())
    }

    /// Where deposit `id` of this distributor is credited.
    pub(crate) fn deposit_key(&self, deposit_id: u64) -> DepositKey {
        DepositKey {
            chain_id: self.state.chain_id,
            contract: self.contract(),
            deposit_id,
        }
    }

    /// The ids of this distributor's deposits the store has credited.
    pub(crate) fn credited_ids(&self, store: &Store) -> Result<BTreeSet<u64>> {
        let here = self.deposit_key(0);
        Ok(store
            .deposits()?
            .into_iter()
            .filter(|d| {
                d.deposit.key.chain_id == here.chain_id && d.deposit.key.contract == here.contract
            })
            .map(|d| d.deposit.key.deposit_id)
            .collect())
    }

    /// The latest block's number.
    pub(crate) async fn head_block(&self) -> Result<u64> {
        self.client
            .run("eth_blockNumber", || async {
                self.client
                    .provider
                    .get_block_number()
                    .await
                    .map_err(classify_rpc)
            })
            .await
    }

    /// `nextDepositId` (the number of deposits) at `block`, or at the latest block.
    pub(crate) async fn deposit_count(&self, block: Option<u64>) -> Result<u64> {
        self.client
            .run("read nextDepositId", || async {
                let call = self.distributor().nextDepositId();
                let call = match block {
                    Some(number) => call.block(BlockId::number(number)),
                    None => call,
                };
                call.call().await.map_err(|e| classify("nextDepositId", e))
            })
            .await
    }

    /// `totalDeposited`: everything paid in (deposits and funding).
    pub(crate) async fn total_deposited(&self) -> Result<u128> {
        self.client
            .run("read totalDeposited", || async {
                self.distributor()
                    .totalDeposited()
                    .call()
                    .await
                    .map_err(|e| classify("totalDeposited", e))
            })
            .await
    }

    /// `totalClaimed`: everything paid out.
    pub(crate) async fn total_claimed(&self) -> Result<u128> {
        self.client
            .run("read totalClaimed", || async {
                self.distributor()
                    .totalClaimed()
                    .call()
                    .await
                    .map_err(|e| classify("totalClaimed", e))
            })
            .await
    }

    /// The `Deposited` events of blocks `from..=to`.
    async fn deposit_logs(&self, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new()
            .address(*self.distributor().address())
            .event_signature(AttributionDistributor::Deposited::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        self.client
            .run("read Deposited events", || async {
                self.client
                    .provider
                    .get_logs(&filter)
                    .await
                    .map_err(classify_rpc)
            })
            .await
    }
}

/// The distributor's first `Deposited` event in `receipt`.
pub(crate) fn deposited_log<'r>(
    d: &Deployment,
    receipt: &'r alloy::rpc::types::TransactionReceipt,
) -> Option<&'r Log> {
    receipt.inner.logs().iter().find(|log| {
        log.address() == *d.distributor().address()
            && log.topic0() == Some(&AttributionDistributor::Deposited::SIGNATURE_HASH)
    })
}

/// The deposit a `Deposited` log records.
pub(crate) fn decode(d: &Deployment, log: &Log) -> Result<Deposit> {
    let event = log
        .log_decode::<AttributionDistributor::Deposited>()
        .map_err(|e| ChainError::Invalid(format!("a Deposited event does not decode: {e}")))?;
    let event = event.inner.data;
    let deposit_id = u64::try_from(event.depositId).map_err(|_| {
        ChainError::Invalid(format!("deposit id {} is 2^64 or more", event.depositId))
    })?;
    Ok(Deposit {
        key: d.deposit_key(deposit_id),
        account: Address(event.account.into_array()),
        amount_wei: money(event.amount, "a deposit")?,
        tx_hash: log.transaction_hash.unwrap_or(B256::ZERO).0,
        block: log.block_number.unwrap_or(0),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Credits `deposit` to the account it names unless its key is credited already (then
/// false): the one path by which a deposit reaches the store, for `sync` and for settled
/// authorizations alike.
pub(crate) fn credit_once(store: &Store, deposit: Deposit) -> Result<bool> {
    let (account, amount) = (deposit.account, deposit.amount_wei);
    Ok(store
        .credit(account, amount, CreditSource::Deposit(deposit), now_ms())?
        .is_some())
}

/// Credits every deposit at least `confirmations` blocks deep that the store does not hold
/// yet (see the module docs).
pub(crate) async fn credit_deposits(
    store: &Store,
    data_dir: &Path,
    d: &mut Deployment,
    confirmations: u64,
) -> Result<DepositScan> {
    let confirmations = confirmations.max(1);
    let head = d.head_block().await?;
    let latest = d.deposit_count(None).await?;
    // A block is one confirmation deep once mined: `head` has one, `head - n + 1` has n.
    let Some(confirmed_block) = (head + 1).checked_sub(confirmations) else {
        return Ok(DepositScan {
            credited: Vec::new(),
            confirmed: 0,
            unconfirmed: latest,
        });
    };
    if confirmed_block < d.state.deploy_block {
        return Ok(DepositScan {
            credited: Vec::new(),
            confirmed: 0,
            unconfirmed: latest,
        });
    }
    let expected = d.deposit_count(Some(confirmed_block)).await?;
    let mut credited_ids = d.credited_ids(store)?;
    let mut credited = Vec::new();
    let all_in = |ids: &BTreeSet<u64>| (0..expected).all(|id| ids.contains(&id));
    if !all_in(&credited_ids) {
        // The cursor only saves work; when it passed a deposit (a chain.json copied from
        // elsewhere), the scan starts over.
        let from = match d.state.deposits_scanned_block {
            Some(done) if done < confirmed_block => done + 1,
            _ => d.state.deploy_block,
        };
        let from = from.max(d.state.deploy_block);
        let mut start = from;
        while start <= confirmed_block {
            let end = (start + LOG_CHUNK_BLOCKS - 1).min(confirmed_block);
            for log in d.deposit_logs(start, end).await? {
                if log.removed {
                    continue;
                }
                let deposit = decode(d, &log)?;
                let id = deposit.key.deposit_id;
                if credited_ids.contains(&id) {
                    continue;
                }
                let account = deposit.account;
                let amount = deposit.amount_wei;
                let report = CreditedDepositReport {
                    deposit_id: id,
                    account: account.to_string(),
                    from: log
                        .topics()
                        .get(3)
                        .map_or_else(String::new, |t| format!("{}", EvmAddress::from_word(*t))),
                    amount_wei: amount.to_string(),
                    tx: hex32(&deposit.tx_hash),
                    block: deposit.block,
                };
                if credit_once(store, deposit)? {
                    credited.push(report);
                }
                credited_ids.insert(id);
            }
            start = end + 1;
        }
        if !all_in(&credited_ids) {
            let missing: Vec<String> = (0..expected)
                .filter(|id| !credited_ids.contains(id))
                .take(10)
                .map(|id| id.to_string())
                .collect();
            d.keep(data_dir, |state| state.deposits_scanned_block = None)?;
            return Err(ChainError::MissingDeposits {
                url: d.client.url.clone(),
                expected,
                block: confirmed_block,
                missing: missing.join(", "),
                deploy_block: d.state.deploy_block,
            });
        }
    }
    if d.state.deposits_scanned_block != Some(confirmed_block) {
        d.keep(data_dir, |state| {
            state.deposits_scanned_block = Some(confirmed_block);
        })?;
    }
    Ok(DepositScan {
        credited,
        confirmed: expected,
        unconfirmed: latest.saturating_sub(expected),
    })
}

/// A step's check that an epoch of `total_wei` is covered by what was paid in.
pub(crate) fn covered(
    epoch: u64,
    total_wei: u128,
    deposited_wei: u128,
) -> std::result::Result<(), StepError> {
    match total_wei.checked_sub(deposited_wei) {
        Some(shortfall_wei) if shortfall_wei > 0 => {
            Err(StepError::Fatal(ChainError::Underfunded {
                epoch,
                total_wei,
                deposited_wei,
                shortfall_wei,
            }))
        }
        _ => Ok(()),
    }
}
