//! Prepaid accounts on the ledger: the [`ChainWriter`] every ledger write goes through
//! (entries chained onto the head, account balances moved, one `WriteBatch`), credits
//! (deposits, credited once per [`DepositKey`], and admin credits) and refunds.
//!
//! Invariants: see `money`. Every balance change is an entry in the hash chain written in the
//! same batch as the account's new state and the new head; a charge above the balance fails
//! with `InsufficientFunds` before anything is written.

use std::collections::BTreeMap;

use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use super::ledger::LedgerHead;
use crate::codec::{decode, encode, encode_entry};
use crate::error::{Result, StorageError};
use crate::hash::keccak256;
use crate::keys::*;
use crate::ledger::{AnswerId, LedgerEntry, NewEntry, Role};
use crate::model::Address;
use crate::money::{
    AccountState, CreditSource, CreditedDeposit, DepositKey, EntryDetail, MAX_CREDIT_REASON_BYTES,
};
use crate::store::Store;

/// Ledger writes in progress: entries chained onto `next`, the accounts they moved, and the
/// batch that will commit them with the new head.
pub(crate) struct ChainWriter<'a> {
    store: &'a Store,
    pub(crate) next: LedgerHead,
    pub(crate) batch: WriteBatch,
    accounts: BTreeMap<Address, AccountState>,
}

/// An entry before it has a place in the chain.
pub(crate) struct Draft {
    pub(crate) answer_id: AnswerId,
    pub(crate) ts_ms: i64,
    pub(crate) caller: Option<Address>,
    pub(crate) payment: NewEntry,
    pub(crate) model: String,
    pub(crate) adapter: Option<String>,
    pub(crate) detail: EntryDetail,
}

/// A money movement's entry: no Datanet, record, model or adapter.
fn movement(id: AnswerId, ts_ms: i64, to: Address, role: Role, amount: u128) -> Draft {
    Draft {
        answer_id: id,
        ts_ms,
        caller: None,
        payment: NewEntry {
            datanet_id: None,
            record_id: None,
            chunk_id: None,
            to,
            role,
            weight_ppm: 0,
            amount_wei: amount,
        },
        model: String::new(),
        adapter: None,
        detail: EntryDetail::None,
    }
}

/// The id of a money movement: keccak256 of its kind, its first sequence number and account.
fn movement_id(kind: &str, seq: u64, account: &Address) -> AnswerId {
    let bytes = [kind.as_bytes(), &seq.to_be_bytes(), &account.0].concat();
    AnswerId(keccak256(&bytes))
}

impl<'a> ChainWriter<'a> {
    pub(crate) fn new(store: &'a Store, head: LedgerHead) -> Self {
        Self {
            store,
            next: head,
            batch: WriteBatch::default(),
            accounts: BTreeMap::new(),
        }
    }

    /// Chains `draft` onto the head and adds it to the batch.
    pub(crate) fn append(&mut self, draft: Draft) -> Result<LedgerEntry> {
        let mut entry = LedgerEntry {
            seq: self.next.last_seq + 1,
            answer_id: draft.answer_id,
            ts_ms: draft.ts_ms,
            caller: draft.caller,
            payment: draft.payment,
            model: draft.model,
            adapter: draft.adapter,
            prev_hash: self.next.hash,
            entry_hash: [0; 32],
            detail: draft.detail,
        };
        entry.entry_hash = entry.computed_hash();
        let total_wei = self.next.add(&entry)?;
        let cf = self.store.cf(CF_LEDGER)?;
        self.batch
            .put_cf(cf, entry.seq.to_be_bytes(), encode_entry(&entry)?);
        self.next = LedgerHead {
            last_seq: entry.seq,
            hash: entry.entry_hash,
            total_wei,
        };
        Ok(entry)
    }

    /// The account's state as this write leaves it so far.
    fn account(&mut self, address: Address) -> Result<&mut AccountState> {
        if !self.accounts.contains_key(&address) {
            let state = self.store.account(&address)?;
            self.accounts.insert(address, state);
        }
        self.accounts
            .get_mut(&address)
            .ok_or_else(|| StorageError::Internal("account vanished from the write".into()))
    }

    /// Adds `amount` to the account's balance and credits.
    pub(crate) fn credit(&mut self, address: Address, amount: u128) -> Result<()> {
        let state = self.account(address)?;
        let overflow = || {
            StorageError::Invalid(format!(
                "crediting {amount} wei would carry account {address} past 2^128 - 1 wei"
            ))
        };
        state.balance_wei = state.balance_wei.checked_add(amount).ok_or_else(overflow)?;
        state.credited_wei = state
            .credited_wei
            .checked_add(amount)
            .ok_or_else(overflow)?;
        Ok(())
    }

    /// Takes `amount` from the account's balance, refusing more than it holds.
    pub(crate) fn charge(&mut self, address: Address, amount: u128) -> Result<()> {
        let state = self.account(address)?;
        let balance = state.balance_wei;
        let remaining = balance
            .checked_sub(amount)
            .ok_or(StorageError::InsufficientFunds {
                account: address,
                balance_wei: balance,
                needed_wei: amount,
            })?;
        state.balance_wei = remaining;
        // charged ≤ credited ≤ u128::MAX, so this cannot wrap.
        state.charged_wei = state.charged_wei.saturating_add(amount);
        Ok(())
    }

    /// Counts an answer charged to the account.
    pub(crate) fn count_answer(&mut self, address: Address) -> Result<()> {
        let state = self.account(address)?;
        state.answers = state.answers.saturating_add(1);
        Ok(())
    }

    /// Commits the batch with the accounts it moved and the new head, then advances `head`.
    pub(crate) fn write(mut self, head: &mut LedgerHead) -> Result<()> {
        let accounts_cf = self.store.cf(CF_ACCOUNTS)?;
        for (address, state) in &self.accounts {
            self.batch.put_cf(accounts_cf, address.0, encode(state)?);
        }
        let meta = self.store.cf(CF_META)?;
        self.batch
            .put_cf(meta, META_LEDGER_HEAD, self.next.encode());
        let mut options = WriteOptions::default();
        options.set_sync(self.store.options.sync_writes);
        self.store
            .db
            .write_opt(self.batch, &options)
            .map_err(|e| self.store.rocks(e))?;
        *head = self.next;
        Ok(())
    }
}

impl Store {
    /// An account's state (all zero for an account never credited).
    pub fn account(&self, address: &Address) -> Result<AccountState> {
        let cf = self.cf(CF_ACCOUNTS)?;
        match self
            .db
            .get_pinned_cf(cf, address.0)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => decode(CF_ACCOUNTS, &address.0, &bytes),
            None => Ok(AccountState::default()),
        }
    }

    /// Every account ever credited, by address.
    pub fn accounts(&self) -> Result<Vec<(Address, AccountState)>> {
        let cf = self.cf(CF_ACCOUNTS)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                let address: [u8; 20] =
                    key.as_ref()
                        .try_into()
                        .map_err(|_| StorageError::Corruption {
                            cf: CF_ACCOUNTS,
                            key: hex::encode(&key),
                            reason: "key is not an address".into(),
                        })?;
                Ok((Address(address), decode(CF_ACCOUNTS, &key, &value)?))
            })
            .collect()
    }

    /// Every deposit credited, in key order (chain, contract, deposit id).
    pub fn deposits(&self) -> Result<Vec<CreditedDeposit>> {
        let cf = self.cf(CF_DEPOSITS)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                decode(CF_DEPOSITS, &key, &value)
            })
            .collect()
    }

    /// The deposit stored under `key`, if it was credited.
    pub fn deposit(&self, key: &DepositKey) -> Result<Option<CreditedDeposit>> {
        let cf = self.cf(CF_DEPOSITS)?;
        let key = key.key();
        match self.db.get_pinned_cf(cf, key).map_err(|e| self.rocks(e))? {
            Some(bytes) => Ok(Some(decode(CF_DEPOSITS, &key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Credits an account: a deposit (skipped, returning `None`, when its key was credited
    /// before) or an admin's credit (a reason of 1 to [`MAX_CREDIT_REASON_BYTES`] bytes and an
    /// amount above 0). Returns the credit entry.
    pub fn credit(
        &self,
        account: Address,
        amount_wei: u128,
        source: CreditSource,
        now_ms: i64,
    ) -> Result<Option<LedgerEntry>> {
        let mut head = self.ledger_lock()?;
        if let CreditSource::Admin { reason, .. } = &source {
            check_reason(reason, amount_wei)?;
        }
        let deposit = match &source {
            CreditSource::Deposit(deposit) => {
                if self.deposit(&deposit.key)?.is_some() {
                    return Ok(None);
                }
                Some(deposit.clone())
            }
            CreditSource::Admin { .. } => None,
        };
        let mut writer = ChainWriter::new(self, *head);
        let id = movement_id("credit", writer.next.last_seq + 1, &account);
        let mut draft = movement(id, now_ms, account, Role::Credit, amount_wei);
        draft.detail = EntryDetail::Credit(source);
        let entry = writer.append(draft)?;
        writer.credit(account, amount_wei)?;
        if let Some(deposit) = deposit {
            let key = deposit.key.key();
            let stored = CreditedDeposit {
                deposit,
                ledger_seq: entry.seq,
                credited_at_ms: now_ms,
            };
            writer
                .batch
                .put_cf(self.cf(CF_DEPOSITS)?, key, encode(&stored)?);
        }
        writer.write(&mut head)?;
        Ok(Some(entry))
    }

    /// Refunds an account's whole balance: a charge of it and a payout of role `refund` to the
    /// same account, claimed after the next epoch like any payout. Returns the two entries.
    pub fn refund(&self, account: Address, now_ms: i64) -> Result<Vec<LedgerEntry>> {
        let mut head = self.ledger_lock()?;
        let balance = self.account(&account)?.balance_wei;
        if balance == 0 {
            return Err(StorageError::Invalid(format!(
                "account {account} has no balance to refund"
            )));
        }
        let mut writer = ChainWriter::new(self, *head);
        let id = movement_id("refund", writer.next.last_seq + 1, &account);
        let mut charge = movement(id, now_ms, account, Role::Charge, balance);
        charge.detail = EntryDetail::Refund;
        let entries = vec![
            writer.append(charge)?,
            writer.append(movement(id, now_ms, account, Role::Refund, balance))?,
        ];
        writer.charge(account, balance)?;
        writer.account(account)?.refunded_wei =
            self.account(&account)?.refunded_wei.saturating_add(balance);
        writer.write(&mut head)?;
        Ok(entries)
    }
}

fn check_reason(reason: &str, amount_wei: u128) -> Result<()> {
    if reason.trim().is_empty() || reason.len() > MAX_CREDIT_REASON_BYTES {
        return Err(StorageError::Invalid(format!(
            "a credit needs a reason of 1 to {MAX_CREDIT_REASON_BYTES} bytes, got {}",
            reason.len()
        )));
    }
    if amount_wei == 0 {
        return Err(StorageError::Invalid(
            "a credit of 0 wei credits nothing".into(),
        ));
    }
    Ok(())
}
