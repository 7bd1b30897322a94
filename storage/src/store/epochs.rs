//! Epochs: closing the open ledger entries into cumulative balances and their Merkle root.
//!
//! Epoch `n` covers entries `first_seq..end_seq`, where `first_seq` is epoch `n-1`'s
//! `end_seq` (1 for the first epoch) and `end_seq` is one past the ledger head when it
//! closed. Its balances are cumulative (every amount ever owed to an account up to `end_seq`),
//! so a claim contract pays `cumulative - already claimed`. Only payouts count
//! (`Role::is_payout`): credits and charges move prepaid balances, which are no one's claim.
//! Closing is serialised by its own
//! mutex; appends go on meanwhile (the epoch ends at the head it read first). The epoch and
//! its balances commit in one `WriteBatch`.
//!
//! Every sum here is `checked_add`. On a ledger written under the ledger's bound (its total
//! fits a `u128`, `store/ledger.rs`) none can fail; on an older ledger that holds more, the
//! close is refused naming the account and entry, and nothing is written.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use crate::codec::{decode, encode};
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::ledger::{Epoch, LedgerEntry};
use crate::merkle::MerkleTree;
use crate::model::Address;
use crate::store::Store;

/// Adds `entry` to the cumulative `balances` of epoch `number` when it is a payout (credits and
/// charges move prepaid balances, no one's claim). Refuses a balance past `u128::MAX`.
pub(crate) fn owe(
    balances: &mut BTreeMap<Address, u128>,
    entry: &LedgerEntry,
    number: u64,
) -> Result<()> {
    if !entry.payment.role.is_payout() {
        return Ok(());
    }
    let balance = balances.entry(entry.payment.to).or_default();
    *balance = balance
        .checked_add(entry.payment.amount_wei)
        .ok_or_else(|| {
            StorageError::Invalid(format!(
                "epoch {number} cannot close: account {} would be owed more than 2^128 - 1 \
                 wei at ledger entry {}",
                entry.payment.to, entry.seq
            ))
        })?;
    Ok(())
}

/// An epoch's cumulative balances made into leaves, tree and total.
pub(crate) struct Settled {
    /// The positive balances, by account.
    pub(crate) leaves: Vec<(Address, u128)>,
    /// Their Merkle tree.
    pub(crate) tree: MerkleTree,
    /// Their sum, in wei.
    pub(crate) total_wei: u128,
}

/// The leaves (positive balances), Merkle tree and total of epoch `number`'s cumulative
/// `balances`. Refuses an epoch no one is owed anything in, and a total past `u128::MAX`.
pub(crate) fn settle(balances: &BTreeMap<Address, u128>, number: u64) -> Result<Settled> {
    let leaves: Vec<(Address, u128)> = balances
        .iter()
        .filter(|(_, a)| **a > 0)
        .map(|(account, amount)| (*account, *amount))
        .collect();
    if leaves.is_empty() {
        return Err(StorageError::Invalid(
            "no account is owed anything yet: an epoch needs a positive balance".into(),
        ));
    }
    let tree = MerkleTree::new(&leaves)?;
    let total_wei = leaves
        .iter()
        .try_fold(0u128, |sum, (_, a)| sum.checked_add(*a))
        .ok_or_else(|| {
            StorageError::Invalid(format!(
                "epoch {number} cannot close: its total would exceed 2^128 - 1 wei"
            ))
        })?;
    Ok(Settled {
        leaves,
        tree,
        total_wei,
    })
}

fn balance_key(epoch: u64, account: &Address) -> [u8; 28] {
    let mut key = [0u8; 28];
    key[..8].copy_from_slice(&epoch.to_be_bytes());
    key[8..].copy_from_slice(&account.0);
    key
}

impl Store {
    /// The closed epochs, in order.
    pub fn epochs(&self) -> Result<Vec<Epoch>> {
        let cf = self.cf(CF_EPOCHS)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                decode(CF_EPOCHS, &key, &value)
            })
            .collect()
    }

    /// One closed epoch.
    pub fn epoch(&self, epoch: u64) -> Result<Option<Epoch>> {
        let cf = self.cf(CF_EPOCHS)?;
        let key = epoch.to_be_bytes();
        match self.db.get_pinned_cf(cf, key).map_err(|e| self.rocks(e))? {
            Some(bytes) => Ok(Some(decode(CF_EPOCHS, &key, &bytes)?)),
            None => Ok(None),
        }
    }

    fn last_epoch(&self) -> Result<Option<Epoch>> {
        let cf = self.cf(CF_EPOCHS)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                Ok(Some(decode(CF_EPOCHS, &key, &value)?))
            }
            None => Ok(None),
        }
    }

    /// Every account's cumulative balance at the end of `epoch`, by address.
    pub fn epoch_balances(&self, epoch: u64) -> Result<Vec<(Address, u128)>> {
        let cf = self.cf(CF_BALANCES)?;
        let prefix = epoch.to_be_bytes();
        let mut balances = Vec::new();
        let mode = IteratorMode::From(&prefix, Direction::Forward);
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let corrupt = |reason: &str| StorageError::Corruption {
                cf: CF_BALANCES,
                key: hex::encode(&key),
                reason: reason.into(),
            };
            let account: [u8; 20] = key[8..]
                .try_into()
                .map_err(|_| corrupt("key is not epoch ‖ address"))?;
            let amount: [u8; 16] = value
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("balance is not 16 bytes"))?;
            balances.push((Address(account), u128::from_be_bytes(amount)));
        }
        Ok(balances)
    }

    /// The Merkle tree of a closed epoch's balances (for proofs).
    pub fn epoch_tree(&self, epoch: u64) -> Result<MerkleTree> {
        let stored = self
            .epoch(epoch)?
            .ok_or_else(|| StorageError::Invalid(format!("no closed epoch {epoch}")))?;
        let tree = MerkleTree::new(&self.epoch_balances(epoch)?)?;
        if tree.root() != stored.root {
            return Err(StorageError::Corruption {
                cf: CF_BALANCES,
                key: hex::encode(epoch.to_be_bytes()),
                reason: "the balances do not hash to the epoch's stored root".into(),
            });
        }
        Ok(tree)
    }

    /// Closes the entries after the last epoch into a new one. Refuses when there is no open
    /// entry, or when no account has a positive balance (a Merkle tree needs a leaf).
    pub fn close_epoch(&self, now_ms: i64) -> Result<Epoch> {
        let _closing = self
            .epoch_closing
            .lock()
            .map_err(|_| StorageError::Internal("epoch mutex poisoned".into()))?;
        let (head_seq, head_hash) = self.ledger_head()?;
        let previous = self.last_epoch()?;
        let first_seq = previous.as_ref().map_or(1, |e| e.end_seq);
        let end_seq = head_seq + 1;
        if first_seq >= end_seq {
            return Err(StorageError::Invalid(
                "no ledger entries since the last epoch".into(),
            ));
        }
        let number = previous.as_ref().map_or(1, |e| e.epoch + 1);
        let mut balances: BTreeMap<Address, u128> = match &previous {
            Some(epoch) => self.epoch_balances(epoch.epoch)?.into_iter().collect(),
            None => BTreeMap::new(),
        };
        self.visit_ledger(first_seq, &mut |entry| {
            if entry.seq >= end_seq {
                return Ok(false);
            }
            owe(&mut balances, &entry, number)?;
            Ok(true)
        })?;
        let Settled {
            leaves,
            tree,
            total_wei,
        } = settle(&balances, number)?;
        let epoch = Epoch {
            epoch: number,
            first_seq,
            end_seq,
            root: tree.root(),
            accounts: leaves.len() as u64,
            total_wei,
            ledger_head: head_hash,
            closed_at_ms: now_ms,
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_EPOCHS)?, number.to_be_bytes(), encode(&epoch)?);
        let balances_cf = self.cf(CF_BALANCES)?;
        for (account, amount) in &leaves {
            batch.put_cf(
                balances_cf,
                balance_key(number, account),
                amount.to_be_bytes(),
            );
        }
        let mut options = WriteOptions::default();
        options.set_sync(self.options.sync_writes);
        self.db
            .write_opt(batch, &options)
            .map_err(|e| self.rocks(e))?;
        Ok(epoch)
    }
}
