//! The ledger side of the `Store`: appending answers (each a charge to its caller's prepaid
//! account, then its payouts) with their hash-chained entries, reading them back, and
//! verifying the chain. Ledger writes (answers, credits, refunds: `accounts`) are serialised
//! by their own mutex (holding the head: last sequence, hash and the total of every payout
//! ever appended), independent of ingest's; an answer, its entries, the accounts it moved and
//! the new head commit in one `WriteBatch`.
//!
//! Invariants: an answer's payouts sum exactly to its fee, which its charge took from its
//! caller's balance. The sum of every payout's `amount_wei` fits a `u128` (the head's
//! `total_wei`, added with `checked_add`). An append whose amounts would carry that total past
//! `u128::MAX` is refused whole, writing nothing. Since every account's cumulative balance and
//! every epoch's total is a partial sum of the ledger, no epoch close can overflow on a ledger
//! written under this rule. The cap on a single fee is policy and lives where fees enter (the
//! root crate's answer request); this bound is arithmetic and holds for every writer.

use rocksdb::{Direction, IteratorMode, WriteOptions};

use crate::codec::{decode, decode_answer, decode_entry, encode, encode_answer};
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::ledger::{
    AnswerId, AnswerRecord, LedgerEntry, LedgerPolicy, NewEntry, PolicyScope, Role,
};
use crate::model::{Address, DatanetId};
use crate::money::EntryDetail;
use crate::store::Store;
use crate::store::accounts::{ChainWriter, Draft};

/// The ledger's head as the writer holds it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LedgerHead {
    /// Last entry written (0: none).
    pub(crate) last_seq: u64,
    /// Its hash (zero: none).
    pub(crate) hash: [u8; 32],
    /// The sum of every payout in entries `1..=last_seq`, in wei.
    pub(crate) total_wei: u128,
}

/// A head written before the total was kept: sequence and hash only.
const LEGACY_HEAD_BYTES: usize = 40;
/// Sequence, hash and total.
const HEAD_BYTES: usize = 56;

impl LedgerHead {
    pub(crate) fn encode(&self) -> [u8; HEAD_BYTES] {
        let mut out = [0u8; HEAD_BYTES];
        out[..8].copy_from_slice(&self.last_seq.to_be_bytes());
        out[8..40].copy_from_slice(&self.hash);
        out[40..].copy_from_slice(&self.total_wei.to_be_bytes());
        out
    }

    /// The head, and whether its total was stored (a legacy head's total is 0 here and must
    /// be summed from the ledger).
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, bool)> {
        if bytes.len() != LEGACY_HEAD_BYTES && bytes.len() != HEAD_BYTES {
            return Err(StorageError::Corruption {
                cf: CF_META,
                key: "ledger_head".into(),
                reason: format!(
                    "expected {LEGACY_HEAD_BYTES} or {HEAD_BYTES} bytes, found {}",
                    bytes.len()
                ),
            });
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[8..40]);
        let mut total = [0u8; 16];
        let stored = bytes.len() == HEAD_BYTES;
        if stored {
            total.copy_from_slice(&bytes[40..]);
        }
        let head = Self {
            last_seq: u64::from_be_bytes(seq),
            hash,
            total_wei: u128::from_be_bytes(total),
        };
        Ok((head, stored))
    }

    /// Adds a payout's amount to the total (credits and charges move prepaid balances and
    /// are not counted), refusing a sum past `u128::MAX`.
    pub(crate) fn add(&self, entry: &LedgerEntry) -> Result<u128> {
        if !entry.payment.role.is_payout() {
            return Ok(self.total_wei);
        }
        self.total_wei
            .checked_add(entry.payment.amount_wei)
            .ok_or_else(|| {
                StorageError::Invalid(format!(
                    "answer {} would carry the ledger's total past 2^128 - 1 wei: it pays {} \
                     wei to {} on top of {} wei already in the ledger; refused, nothing written",
                    entry.answer_id, entry.payment.amount_wei, entry.payment.to, self.total_wei
                ))
            })
    }
}

/// Refuses an answer whose payments are not payouts, do not sum exactly to its fee, or charge
/// no one for a fee above 0.
fn check_payouts(answer: &NewAnswer) -> Result<()> {
    let record = &answer.record;
    let mut sum = 0u128;
    for payment in &answer.entries {
        if !payment.role.is_payout() {
            return Err(StorageError::Invalid(format!(
                "answer {} lists a {} entry among its payments",
                record.answer_id,
                payment.role.as_str()
            )));
        }
        sum = sum.checked_add(payment.amount_wei).ok_or_else(|| {
            StorageError::Invalid(format!(
                "answer {}'s payments sum past 2^128 - 1 wei",
                record.answer_id
            ))
        })?;
    }
    if sum != record.fee_wei {
        return Err(StorageError::Invalid(format!(
            "answer {} pays out {sum} wei but its fee is {} wei",
            record.answer_id, record.fee_wei
        )));
    }
    if record.fee_wei > 0 && record.caller.is_none() {
        return Err(StorageError::Invalid(format!(
            "answer {} has a fee of {} wei and no caller to charge it to",
            record.answer_id, record.fee_wei
        )));
    }
    Ok(())
}

/// An answer to append: its record (whose `first_seq` and `entries` are filled in here) and
/// its payments.
#[derive(Clone, Debug)]
pub struct NewAnswer {
    /// The answer.
    pub record: AnswerRecord,
    /// Its payments, in order.
    pub entries: Vec<NewEntry>,
}

impl Store {
    pub(crate) fn load_ledger_head(&self) -> Result<LedgerHead> {
        match self
            .db
            .get_cf(self.cf(CF_META)?, META_LEDGER_HEAD)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => match LedgerHead::decode(&bytes)? {
                (head, true) => Ok(head),
                (head, false) => Ok(LedgerHead {
                    total_wei: self.ledger_total()?,
                    ..head
                }),
            },
            None => Ok(LedgerHead::default()),
        }
    }

    /// The sum of every amount in the ledger, for a head written before the total was kept.
    /// A legacy ledger whose amounts already exceed `u128::MAX` counts as full (`u128::MAX`):
    /// it stays readable, and every further paid answer is refused.
    fn ledger_total(&self) -> Result<u128> {
        let mut total = 0u128;
        self.visit_ledger(1, &mut |entry| {
            if entry.payment.role.is_payout() {
                total = total.saturating_add(entry.payment.amount_wei);
            }
            Ok(true)
        })?;
        Ok(total)
    }

    pub(crate) fn ledger_lock(&self) -> Result<std::sync::MutexGuard<'_, LedgerHead>> {
        self.ledger
            .lock()
            .map_err(|_| StorageError::Internal("ledger mutex poisoned".into()))
    }

    /// Appends answers with their entries, chaining each entry to the previous one, in one
    /// write (a group commit: many answers cost one fsync). Each answer's entries are preceded
    /// by its charge (role `charge`, the question and answer text by hash), which takes its fee
    /// from the caller's prepaid account. Refused whole, writing nothing: an answer id already
    /// in the ledger (an answer is never paid twice), payments that are not payouts or do not
    /// sum exactly to the fee, a fee above 0 without a caller, a caller whose balance is short
    /// (`InsufficientFunds`), and amounts that would carry the ledger's total past `u128::MAX`
    /// (see the module docs). Returns the stored answer records.
    pub fn append_answers(&self, answers: Vec<NewAnswer>) -> Result<Vec<AnswerRecord>> {
        let mut head = self.ledger_lock()?;
        let answers_cf = self.cf(CF_ANSWERS)?;
        let mut seen = std::collections::HashSet::new();
        for answer in &answers {
            let id = answer.record.answer_id;
            let stored = self
                .db
                .get_pinned_cf(answers_cf, id.0)
                .map_err(|e| self.rocks(e))?
                .is_some();
            if stored || !seen.insert(id) {
                return Err(StorageError::Invalid(format!(
                    "answer {id} is already in the ledger"
                )));
            }
            check_payouts(answer)?;
        }
        let mut writer = ChainWriter::new(self, *head);
        let mut stored = Vec::with_capacity(answers.len());
        for NewAnswer {
            mut record,
            entries,
        } in answers
        {
            record.first_seq = writer.next.last_seq + 1;
            record.entries = u32::try_from(entries.len() + 1)
                .map_err(|_| StorageError::Invalid("too many entries in one answer".into()))?;
            let draft = |payment: NewEntry, detail: EntryDetail| Draft {
                answer_id: record.answer_id,
                ts_ms: record.ts_ms,
                caller: record.caller,
                payment,
                model: record.model.clone(),
                adapter: record.adapter.clone(),
                detail,
            };
            let payer = record.caller.unwrap_or(Address([0; 20]));
            let charge = NewEntry {
                datanet_id: None,
                record_id: None,
                chunk_id: None,
                to: payer,
                role: Role::Charge,
                weight_ppm: 0,
                amount_wei: record.fee_wei,
            };
            writer.append(draft(
                charge,
                EntryDetail::answer(&record.question, &record.text),
            ))?;
            if let Some(caller) = record.caller {
                writer.charge(caller, record.fee_wei)?;
                writer.count_answer(caller)?;
            }
            for payment in entries {
                writer.append(draft(payment, EntryDetail::None))?;
            }
            writer
                .batch
                .put_cf(answers_cf, record.answer_id.0, encode_answer(&record)?);
            stored.push(record);
        }
        writer.write(&mut head)?;
        Ok(stored)
    }

    /// The fee policy stored for `scope`, if any.
    pub fn ledger_policy(&self, scope: &PolicyScope) -> Result<Option<LedgerPolicy>> {
        let key = scope.key();
        match self
            .db
            .get_cf(self.cf(CF_META)?, &key)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => Ok(Some(decode(CF_META, &key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The policy an answer by `model` over `datanets` is split by: the model's own, else the
    /// Datanet's when the answer reads one Datanet that has its own, else the default (all to
    /// the data share until the operator sets one).
    pub fn effective_ledger_policy(
        &self,
        model: &str,
        datanets: &[DatanetId],
    ) -> Result<LedgerPolicy> {
        if let Some(policy) = self.ledger_policy(&PolicyScope::Model(model.to_string()))? {
            return Ok(policy);
        }
        if let [datanet] = datanets
            && let Some(policy) = self.ledger_policy(&PolicyScope::Datanet(*datanet))?
        {
            return Ok(policy);
        }
        Ok(self
            .ledger_policy(&PolicyScope::Default)?
            .unwrap_or_default())
    }

    /// Stores the fee policy of `scope` (checked first).
    pub fn set_ledger_policy(&self, scope: &PolicyScope, policy: &LedgerPolicy) -> Result<()> {
        policy.validate()?;
        if let PolicyScope::Datanet(id) = scope {
            self.datanet_by_id(*id)?;
        }
        let _head = self.ledger_lock()?;
        let mut options = WriteOptions::default();
        options.set_sync(self.options.sync_writes);
        self.db
            .put_cf_opt(self.cf(CF_META)?, scope.key(), encode(policy)?, &options)
            .map_err(|e| self.rocks(e))
    }

    /// The last entry's sequence number and hash.
    pub fn ledger_head(&self) -> Result<(u64, [u8; 32])> {
        let head = self.ledger_lock()?;
        Ok((head.last_seq, head.hash))
    }

    /// The sum of every payout in the ledger, in wei (it bounds every claim and epoch total).
    pub fn ledger_total_wei(&self) -> Result<u128> {
        Ok(self.ledger_lock()?.total_wei)
    }

    /// Visits entries from `from_seq` on, in order, until `visit` returns false.
    pub fn visit_ledger(
        &self,
        from_seq: u64,
        visit: &mut dyn FnMut(LedgerEntry) -> Result<bool>,
    ) -> Result<()> {
        let cf = self.cf(CF_LEDGER)?;
        let start = from_seq.to_be_bytes();
        let mode = IteratorMode::From(&start, Direction::Forward);
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !visit(decode_entry(CF_LEDGER, &key, &value)?)? {
                break;
            }
        }
        Ok(())
    }

    /// One answer.
    pub fn answer(&self, id: &AnswerId) -> Result<Option<AnswerRecord>> {
        let cf = self.cf(CF_ANSWERS)?;
        match self.db.get_pinned_cf(cf, id.0).map_err(|e| self.rocks(e))? {
            Some(bytes) => Ok(Some(decode_answer(CF_ANSWERS, &id.0, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Visits every answer (in id order) until `visit` returns false.
    pub fn visit_answers(&self, visit: &mut dyn FnMut(AnswerRecord) -> Result<bool>) -> Result<()> {
        let cf = self.cf(CF_ANSWERS)?;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            if !visit(decode_answer(CF_ANSWERS, &key, &value)?)? {
                break;
            }
        }
        Ok(())
    }
}
