//! Tokens that reached the distributor by a plain transfer instead of a deposit, credited to
//! their senders: an x402 authorization an outside facilitator settled (it calls the token's
//! `transferWithAuthorization` itself), the same payload submitted straight to the token by
//! anyone who saw it, or a transfer sent by mistake. The operator finds them in the token's
//! `Transfer` logs and credits each with `creditTransfer`, which makes it a deposit like any
//! other (`Deposited`), credited to the store by `crediting.rs`.
//!
//! Invariants:
//! - A transfer is one `Transfer` log into the distributor that no deposit or funding of the
//!   same transaction took in: each `Deposited`/`Funded` event of the distributor consumes the
//!   latest `Transfer` into it before it in its transaction (`depositToken`, `fundToken` and
//!   `depositWithAuthorization` emit the token's `Transfer` first). What is left is credited.
//! - Each log is credited at most once, to the `from` it names: the contract keys it by
//!   `keccak256(abi.encode(txHash, logIndex))` and refuses a key twice, and refuses an amount
//!   beyond what it holds outside its count. Mints (from the zero address) credit nobody.
//! - Only logs of blocks `confirmations` deep are credited; the scan cursor in `chain.json`
//!   moves only after every transfer before it is credited.

use std::collections::BTreeMap;
use std::path::Path;

use alloy::primitives::{Address as EvmAddress, B256, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, Log, TransactionReceipt};
use alloy::sol_types::{SolEvent, SolValue};
use provdb_storage::{Store, hex32};
use serde::Serialize;

use super::authorizing::{SettledAuthorization, confirmed};
use super::crediting::{credit_once, decode, deposited_log};
use super::deploying::{Deployment, parse_address};
use super::step::{Check, Outcome};
use crate::authorization::TransferAuthorization;
use crate::bindings::{AttributionDistributor, Erc20, Erc3009};
use crate::client::{RetryPolicy, classify, classify_rpc};
use crate::error::{ChainError, Result};

/// Blocks per `eth_getLogs` query.
const LOG_CHUNK_BLOCKS: u64 = 5_000;

/// A plain transfer into the distributor that `sync` credited to its sender.
#[derive(Clone, Debug, Serialize)]
pub struct CreditedTransfer {
    /// Who sent it, and whom it credits.
    pub from: String,
    /// The amount, in the token's smallest unit (decimal).
    pub amount_wei: String,
    /// The transaction that moved it.
    pub transfer_tx: String,
    /// Its `Transfer` log's index in the block.
    pub log_index: u64,
    /// The `creditTransfer` transaction.
    pub tx: String,
}

/// What one scan of plain transfers did.
#[derive(Default)]
pub(crate) struct TransferScan {
    /// Credited now.
    pub(crate) credited: Vec<CreditedTransfer>,
    /// Left: the distributor does not hold their amounts outside its count (`tx` empty).
    pub(crate) not_held: Vec<CreditedTransfer>,
}

/// One `Transfer` log into the distributor.
struct Inflow {
    from: EvmAddress,
    amount: U256,
    tx: B256,
    log_index: u64,
}

impl Inflow {
    /// The key `creditTransfer` credits it under.
    fn reference(&self) -> B256 {
        transfer_ref(self.tx, self.log_index)
    }
}

/// `keccak256(abi.encode(txHash, logIndex))`, as `creditTransfer` keys a transfer.
pub(crate) fn transfer_ref(tx: B256, log_index: u64) -> B256 {
    keccak256((tx, U256::from(log_index)).abi_encode())
}

impl Deployment {
    /// The token (ERC-20 mode), or None (ETH: a plain send to the distributor reverts).
    fn token_address(&self) -> Result<Option<EvmAddress>> {
        self.state
            .token
            .as_deref()
            .map(|t| parse_address(t, "token"))
            .transpose()
    }

    async fn logs(&self, what: &str, filter: &Filter) -> Result<Vec<Log>> {
        self.client
            .run(what, || async {
                self.client
                    .provider
                    .get_logs(filter)
                    .await
                    .map_err(classify_rpc)
            })
            .await
    }

    /// The plain transfers into the distributor in blocks `from..=to` (see the module docs).
    async fn inflows(&self, token: EvmAddress, from: u64, to: u64) -> Result<Vec<Inflow>> {
        let distributor = *self.distributor().address();
        let transfers = Filter::new()
            .address(token)
            .event_signature(Erc20::Transfer::SIGNATURE_HASH)
            .topic2(distributor.into_word())
            .from_block(from)
            .to_block(to);
        let transfers = self.logs("read Transfer events", &transfers).await?;
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        let takers = Filter::new()
            .address(distributor)
            .event_signature(vec![
                AttributionDistributor::Deposited::SIGNATURE_HASH,
                AttributionDistributor::Funded::SIGNATURE_HASH,
            ])
            .from_block(from)
            .to_block(to);
        let takers = self
            .logs("read Deposited and Funded events", &takers)
            .await?;
        Ok(uncounted(transfers, takers))
    }
}

/// One log of a transaction, by its index: a transfer in (Some), or a taker (None).
type TxLog = (u64, Option<Inflow>);

/// The `transfers` no log of `takers` took in (see the module docs).
fn uncounted(transfers: Vec<Log>, takers: Vec<Log>) -> Vec<Inflow> {
    let mut by_tx: BTreeMap<(u64, B256), Vec<TxLog>> = BTreeMap::new();
    for log in transfers.into_iter().filter(|l| !l.removed) {
        let (Some(tx), Some(index)) = (log.transaction_hash, log.log_index) else {
            continue;
        };
        let Ok(event) = log.log_decode::<Erc20::Transfer>() else {
            continue;
        };
        let event = event.inner.data;
        let block = log.block_number.unwrap_or(0);
        by_tx.entry((block, tx)).or_default().push((
            index,
            Some(Inflow {
                from: event.from,
                amount: event.value,
                tx,
                log_index: index,
            }),
        ));
    }
    for log in takers.into_iter().filter(|l| !l.removed) {
        let (Some(tx), Some(index)) = (log.transaction_hash, log.log_index) else {
            continue;
        };
        let block = log.block_number.unwrap_or(0);
        if let Some(entries) = by_tx.get_mut(&(block, tx)) {
            entries.push((index, None));
        }
    }
    let mut out = Vec::new();
    for (_, mut entries) in by_tx {
        entries.sort_by_key(|(index, _)| *index);
        let mut open: Vec<Inflow> = Vec::new();
        for (_, entry) in entries {
            match entry {
                Some(inflow) => open.push(inflow),
                None => {
                    open.pop();
                }
            }
        }
        out.extend(open.into_iter().filter(|i| i.from != EvmAddress::ZERO));
    }
    out
}

/// Credits every plain transfer into the distributor in blocks at least `confirmations` deep
/// to its sender with `creditTransfer` (the deployment's key must be the operator's); the
/// deposits this makes are credited to the store by the deposit scan that follows. A transfer
/// whose amount the distributor no longer holds outside its count is reported, not sent.
/// Nothing in ETH mode.
pub(crate) async fn credit_transfers(
    data_dir: &Path,
    d: &mut Deployment,
    confirmations: u64,
) -> Result<TransferScan> {
    let Some(token) = d.token_address()? else {
        return Ok(TransferScan::default());
    };
    let head = d.head_block().await?;
    let Some(confirmed_block) = (head + 1).checked_sub(confirmations.max(1)) else {
        return Ok(TransferScan::default());
    };
    let from = match d.state.transfers_scanned_block {
        Some(done) => done + 1,
        None => d.state.deploy_block,
    }
    .max(d.state.deploy_block);
    let mut scan = TransferScan::default();
    let mut start = from;
    while start <= confirmed_block {
        let end = (start + LOG_CHUNK_BLOCKS - 1).min(confirmed_block);
        for inflow in d.inflows(token, start, end).await? {
            match credit_transfer(d, &inflow).await? {
                Credit::Sent(done) => scan.credited.push(done),
                Credit::Already => {}
                Credit::NotHeld(left) => scan.not_held.push(left),
            }
        }
        start = end + 1;
    }
    if from <= confirmed_block {
        d.keep(data_dir, |state| {
            state.transfers_scanned_block = Some(confirmed_block);
        })?;
    }
    Ok(scan)
}

/// What became of one plain transfer.
enum Credit {
    /// `creditTransfer` was sent for it now.
    Sent(CreditedTransfer),
    /// The contract had credited it already.
    Already,
    /// The distributor holds less than it outside its count (what was there was credited
    /// otherwise): nothing was sent.
    NotHeld(CreditedTransfer),
}

/// Sends `creditTransfer` for `inflow` unless the contract credited it already or does not
/// hold its amount outside its count (it would refuse).
async fn credit_transfer(d: &Deployment, inflow: &Inflow) -> Result<Credit> {
    let reference = inflow.reference();
    let operation = format!(
        "credit the transfer of {} from {} (tx {}, log {})",
        inflow.amount, inflow.from, inflow.tx, inflow.log_index
    );
    let outcome = d
        .transact(
            &operation,
            async |d, _| {
                let dist = d.distributor();
                let done = dist
                    .transferCredited(reference)
                    .call()
                    .await
                    .map_err(|e| classify("transferCredited", e))?;
                if done {
                    return Ok(Check::Done(true));
                }
                let uncounted = d.uncounted().await?;
                Ok(if inflow.amount > uncounted {
                    Check::Done(false)
                } else {
                    Check::Send(false)
                })
            },
            |d, _| {
                d.distributor()
                    .creditTransfer(inflow.from, inflow.amount, reference)
            },
        )
        .await?;
    let report = |tx: String| CreditedTransfer {
        from: inflow.from.to_string(),
        amount_wei: inflow.amount.to_string(),
        transfer_tx: inflow.tx.to_string(),
        log_index: inflow.log_index,
        tx,
    };
    Ok(match outcome {
        Outcome::Done(true) => Credit::Already,
        Outcome::Done(false) => Credit::NotHeld(report(String::new())),
        Outcome::Sent { record, .. } => Credit::Sent(report(record.tx)),
    })
}

impl Deployment {
    /// What the distributor holds of its token outside its count:
    /// `balanceOf(distributor) + totalClaimed - totalDeposited` (0 when below).
    async fn uncounted(&self) -> std::result::Result<U256, crate::client::StepError> {
        let dist = self.distributor();
        let token = self
            .token_address()
            .map_err(crate::client::StepError::Fatal)?
            .ok_or_else(|| {
                crate::client::StepError::Fatal(ChainError::Invalid(
                    "the distributor takes ETH, not a token".into(),
                ))
            })?;
        let held = Erc20::new(token, self.client.provider.clone())
            .balanceOf(*dist.address())
            .call()
            .await
            .map_err(|e| classify("balanceOf", e))?;
        let deposited = dist
            .totalDeposited()
            .call()
            .await
            .map_err(|e| classify("totalDeposited", e))?;
        let claimed = dist
            .totalClaimed()
            .call()
            .await
            .map_err(|e| classify("totalClaimed", e))?;
        let counted = U256::from(deposited).saturating_sub(U256::from(claimed));
        Ok(held.saturating_sub(counted))
    }
}

/// Credits an x402 payment an outside facilitator settled in transaction `tx`: once `tx` is
/// `confirmations` deep, its receipt must show the token spending `auth`'s nonce and moving
/// exactly `auth.value` from the payer to the distributor (a facilitator's word is not taken);
/// then `creditTransfer` (signed by `key`, the operator's) makes it a deposit for the payer,
/// credited to `store` once, as [`settle_authorization`](super::settle_authorization) credits
/// its own. A `sync` that credited the transfer first is found by its `TransferCredited` event.
#[expect(
    clippy::too_many_arguments,
    reason = "the API the server codes against, like `settle_authorization`'s"
)]
pub async fn credit_settled_authorization(
    store: &Store,
    data_dir: &Path,
    key: &str,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
    tx: &str,
    auth: &TransferAuthorization,
    confirmations: u64,
) -> Result<SettledAuthorization> {
    let d = Deployment::open(data_dir, rpc_url, Some(key), retry)?;
    let hash: B256 = tx.parse().map_err(|_| {
        ChainError::Invalid(format!(
            "the facilitator's transaction {tx:?} is not a hash"
        ))
    })?;
    let operation = format!("check the facilitator's settlement {hash}");
    let receipt = receipt_of(&d, &operation, hash).await?;
    let receipt = confirmed(&d, &operation, receipt, confirmations).await?;
    let inflow = settled_inflow(&d, &receipt, auth)?;
    let credit_tx = match credit_transfer(&d, &inflow).await? {
        Credit::Sent(done) => done.tx.parse().map_err(|_| {
            ChainError::Invalid(format!(
                "{operation}: a receipt's hash {:?} does not parse",
                done.tx
            ))
        })?,
        Credit::Already => credited_by(&d, inflow.reference()).await?,
        Credit::NotHeld(_) => {
            return Err(ChainError::Invalid(format!(
                "{operation}: the distributor does not hold {} of the token outside its count",
                inflow.amount
            )));
        }
    };
    let credit = receipt_of(&d, &operation, credit_tx).await?;
    let credit = confirmed(&d, &operation, credit, confirmations).await?;
    let log = deposited_log(&d, &credit).ok_or_else(|| {
        ChainError::Invalid(format!("{operation}: {credit_tx} has no Deposited event"))
    })?;
    let deposit = decode(&d, log)?;
    let settled = SettledAuthorization {
        deposit_id: deposit.key.deposit_id,
        tx: format!("{hash}"),
        block: receipt.block_number.unwrap_or(0),
        amount_wei: deposit.amount_wei,
        payer: deposit.account,
        credited: false,
        gas_used: credit.gas_used,
    };
    let credited = credit_once(store, deposit)?;
    Ok(SettledAuthorization {
        credited,
        ..settled
    })
}

async fn receipt_of(d: &Deployment, operation: &str, hash: B256) -> Result<TransactionReceipt> {
    let receipt = d
        .client
        .run("read the receipt", || async {
            d.client
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(classify_rpc)
        })
        .await?
        .ok_or_else(|| {
            ChainError::Invalid(format!("{operation}: the node knows no transaction {hash}"))
        })?;
    if !receipt.status() {
        return Err(ChainError::Reverted {
            operation: operation.to_string(),
            reason: format!("transaction {hash} reverted on chain"),
        });
    }
    Ok(receipt)
}

/// The transfer of `auth` in `receipt`: the token's `AuthorizationUsed(from, nonce)` and its
/// `Transfer(from, distributor, value)`, or [`ChainError::Invalid`] naming what is missing.
fn settled_inflow(
    d: &Deployment,
    receipt: &TransactionReceipt,
    auth: &TransferAuthorization,
) -> Result<Inflow> {
    let token = d
        .token_address()?
        .ok_or_else(|| ChainError::Invalid("the distributor takes ETH, not a token".into()))?;
    let distributor = *d.distributor().address();
    let from = EvmAddress::from(auth.from.0);
    let hash = receipt.transaction_hash;
    let logs = receipt.inner.logs();
    let used = logs.iter().any(|log| {
        log.address() == token
            && log
                .log_decode::<Erc3009::AuthorizationUsed>()
                .is_ok_and(|e| {
                    e.inner.data.authorizer == from && e.inner.data.nonce.0 == auth.nonce
                })
    });
    if !used {
        return Err(ChainError::Invalid(format!(
            "transaction {hash} does not spend the authorization of {from} (nonce {})",
            hex32(&auth.nonce)
        )));
    }
    logs.iter()
        .filter(|log| log.address() == token)
        .find_map(|log| {
            let event = log.log_decode::<Erc20::Transfer>().ok()?.inner.data;
            (event.from == from && event.to == distributor && event.value == U256::from(auth.value))
                .then_some(Inflow {
                    from,
                    amount: event.value,
                    tx: hash,
                    log_index: log.log_index?,
                })
        })
        .ok_or_else(|| {
            ChainError::Invalid(format!(
                "transaction {hash} moves no {} of the token from {from} to the distributor \
                 {distributor}",
                auth.value
            ))
        })
}

/// The transaction whose `TransferCredited` event credited `reference`.
async fn credited_by(d: &Deployment, reference: B256) -> Result<B256> {
    let filter = Filter::new()
        .address(*d.distributor().address())
        .event_signature(AttributionDistributor::TransferCredited::SIGNATURE_HASH)
        .topic2(reference)
        .from_block(d.state.deploy_block);
    d.logs("read TransferCredited events", &filter)
        .await?
        .into_iter()
        .find(|log| !log.removed)
        .and_then(|log| log.transaction_hash)
        .ok_or_else(|| {
            ChainError::Invalid(format!(
                "the distributor says transfer {reference} is credited, but shows no \
                 TransferCredited event for it"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(block: u64, tx: u8, index: u64, data: alloy::primitives::LogData) -> Log {
        Log {
            inner: alloy::primitives::Log {
                address: EvmAddress::ZERO,
                data,
            },
            block_number: Some(block),
            transaction_hash: Some(B256::repeat_byte(tx)),
            log_index: Some(index),
            ..Log::default()
        }
    }

    fn transfer(block: u64, tx: u8, index: u64, from: u8, value: u64) -> Log {
        let event = Erc20::Transfer {
            from: EvmAddress::repeat_byte(from),
            to: EvmAddress::repeat_byte(0xdd),
            value: U256::from(value),
        };
        log(block, tx, index, event.encode_log_data())
    }

    fn taker(block: u64, tx: u8, index: u64) -> Log {
        let event = AttributionDistributor::Funded {
            from: EvmAddress::repeat_byte(1),
            amount: U256::from(1),
        };
        log(block, tx, index, event.encode_log_data())
    }

    fn left(transfers: Vec<Log>, takers: Vec<Log>) -> Vec<(u8, u64)> {
        uncounted(transfers, takers)
            .into_iter()
            .map(|i| (i.from.0[0], i.log_index))
            .collect()
    }

    #[test]
    fn a_deposit_takes_in_the_transfer_before_it_and_the_rest_is_credited() {
        // tx 1: a deposit (transfer, then Deposited); tx 2: a plain transfer; tx 3: a plain
        // transfer, then a deposit in the same transaction; tx 4: a mint.
        let transfers = vec![
            transfer(10, 1, 0, 0xa1, 5),
            transfer(10, 2, 2, 0xa2, 6),
            transfer(11, 3, 0, 0xa3, 7),
            transfer(11, 3, 3, 0xa4, 8),
            transfer(12, 4, 0, 0x00, 9),
        ];
        let takers = vec![taker(10, 1, 1), taker(11, 3, 4), taker(13, 9, 0)];
        assert_eq!(left(transfers, takers), vec![(0xa2, 2), (0xa3, 0)]);
    }

    #[test]
    fn a_taker_before_any_transfer_takes_nothing_and_references_differ_per_log() {
        let transfers = vec![transfer(10, 1, 1, 0xa1, 5)];
        let takers = vec![taker(10, 1, 0)];
        assert_eq!(left(transfers, takers), vec![(0xa1, 1)]);
        let tx = B256::repeat_byte(7);
        assert_ne!(transfer_ref(tx, 0), transfer_ref(tx, 1));
        assert_ne!(transfer_ref(tx, 0), transfer_ref(B256::repeat_byte(8), 0));
    }
}
