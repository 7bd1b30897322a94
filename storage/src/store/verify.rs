//! Verifying the ledger from its entries alone: the hash chain (sequence numbers without gaps,
//! each `prev_hash` the previous entry's hash, each `entry_hash` recomputed, the stored head
//! the last entry) and every closed epoch replayed from the entries it covers (its ledger head,
//! its cumulative balances' Merkle root and total, each equal to its record).
//!
//! Invariant: the check reads and never writes. What it returns as `epochs` is recomputed from
//! the entries, never copied from the epoch records, so that a ledger rewritten together with
//! its epochs and balances (self-consistent, passing the local checks) still disagrees with the
//! roots and heads an earlier sync posted on chain (`provdb chain verify`).

use std::collections::BTreeMap;
use std::iter::Peekable;

use rocksdb::IteratorMode;

use crate::codec::decode_entry;
use crate::error::Result;
use crate::keys::*;
use crate::ledger::{Epoch, LedgerCheck, LedgerEntry, ReplayedEpoch};
use crate::model::Address;
use crate::store::Store;
use crate::store::epochs::{Settled, owe, settle};

/// The closed epochs met so far while walking the entries, and the cumulative balances.
struct Replay<I: Iterator<Item = Epoch>> {
    records: Peekable<I>,
    balances: BTreeMap<Address, u128>,
    replayed: Vec<ReplayedEpoch>,
    /// Where the next epoch must start: one past the last replayed one's end.
    next_first_seq: u64,
}

impl<I: Iterator<Item = Epoch>> Replay<I> {
    /// The epoch number `entry` falls in (one past the last when it is still open).
    fn number(&self) -> u64 {
        self.replayed.len() as u64 + 1
    }

    /// Adds a verified entry; when it is the last of an epoch, replays that epoch and checks it
    /// against its record. The reason when they differ.
    fn add(&mut self, entry: &LedgerEntry) -> Option<String> {
        let number = self.number();
        if let Err(e) = owe(&mut self.balances, entry, number) {
            return Some(e.to_string());
        }
        let record = self.records.next_if(|r| r.end_seq == entry.seq + 1)?;
        if record.epoch != number || record.first_seq != self.next_first_seq {
            return Some(format!(
                "epoch record {} (entries {}..{}) is out of order: expected epoch {number}",
                record.epoch, record.first_seq, record.end_seq
            ));
        }
        let Settled {
            tree, total_wei, ..
        } = match settle(&self.balances, number) {
            Ok(settled) => settled,
            Err(e) => return Some(e.to_string()),
        };
        let replayed = ReplayedEpoch {
            epoch: number,
            ledger_head: entry.entry_hash,
            root: tree.root(),
            total_wei,
        };
        let differs = |what: &str, stored: String, computed: String| {
            Some(format!(
                "epoch {number} records {what} {stored}, its entries give {computed}"
            ))
        };
        let problem = if record.ledger_head != replayed.ledger_head {
            differs(
                "ledger head",
                hex32(&record.ledger_head),
                hex32(&replayed.ledger_head),
            )
        } else if record.root != replayed.root {
            differs("root", hex32(&record.root), hex32(&replayed.root))
        } else if record.total_wei != replayed.total_wei {
            differs(
                "total",
                record.total_wei.to_string(),
                replayed.total_wei.to_string(),
            )
        } else {
            None
        };
        self.replayed.push(replayed);
        self.next_first_seq = record.end_seq;
        problem
    }
}

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl Store {
    /// Recomputes the hash chain from the first entry and replays every closed epoch from its
    /// entries. Names the first entry that fails (for an epoch, its last entry).
    pub fn verify_ledger(&self) -> Result<LedgerCheck> {
        let (head_seq, head_hash) = self.ledger_head()?;
        let mut replay = Replay {
            records: self.epochs()?.into_iter().peekable(),
            balances: BTreeMap::new(),
            replayed: Vec::new(),
            next_first_seq: 1,
        };
        let cf = self.cf(CF_LEDGER)?;
        let mut expected_seq = 1u64;
        let mut prev = [0u8; 32];
        let mut broken = None;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.rocks(e))?;
            let seq = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            let problem = match decode_entry(CF_LEDGER, &key, &value) {
                Err(e) => Some(format!("entry cannot be decoded: {e}")),
                Ok(_) if seq != expected_seq => {
                    Some(format!("expected entry {expected_seq}, found key {seq}"))
                }
                Ok(entry) if entry.seq != seq => {
                    Some(format!("stored under {seq} but says {}", entry.seq))
                }
                Ok(entry) if entry.prev_hash != prev => {
                    Some("prev_hash does not match the previous entry's hash".into())
                }
                Ok(entry) if entry.computed_hash() != entry.entry_hash => {
                    Some("entry_hash does not match its contents".into())
                }
                Ok(entry) => {
                    prev = entry.entry_hash;
                    replay.add(&entry)
                }
            };
            if let Some(reason) = problem {
                broken = Some((seq, reason));
                break;
            }
            expected_seq += 1;
        }
        let entries = expected_seq - 1;
        if broken.is_none() && (entries != head_seq || prev != head_hash) {
            broken = Some((
                entries + 1,
                format!(
                    "the ledger head says {head_seq} entries ending in {}, the chain has \
                     {entries} ending in {}",
                    hex32(&head_hash),
                    hex32(&prev)
                ),
            ));
        }
        if broken.is_none()
            && let Some(record) = replay.records.next()
        {
            broken = Some((
                record.end_seq.saturating_sub(1),
                format!(
                    "epoch {} ends at entry {}, past the ledger's last ({entries})",
                    record.epoch,
                    record.end_seq.saturating_sub(1)
                ),
            ));
        }
        Ok(LedgerCheck {
            entries,
            broken,
            head: prev,
            epochs: replay.replayed,
        })
    }
}
