//! The attribution ledger's data model: answers, their ledger entries, epochs, and the
//! canonical encoding an entry's hash is computed over.
//!
//! Invariants:
//! - Entries are numbered from 1 without gaps (`seq`), and `entry_hash = keccak256(prev_hash ‖
//!   canonical(entry))` with `prev_hash` the previous entry's hash (32 zero bytes for entry 1).
//!   Changing any field of any entry changes its hash and breaks the link to the next one.
//! - An answer and all of its entries are written in one RocksDB `WriteBatch`: an answer is
//!   wholly in the ledger or not at all.
//! - An epoch covers the entries `first_seq..end_seq`; epochs are contiguous from entry 1, and
//!   each stores every account's cumulative balance up to its end and the Merkle root of those
//!   balances.
//!
//! Canonical encoding of an entry (all integers big-endian; `opt(x)` is one byte 0 for absent,
//! or 1 followed by `x`; `str(s)` is the UTF-8 length as u32 then the bytes):
//! `seq u64 ‖ answer_id 32 ‖ ts_ms i64 ‖ opt(caller 20) ‖ opt(datanet_id u32) ‖ opt(record_id
//! 32) ‖ opt(chunk_id u64) ‖ to 20 ‖ role u8 ‖ weight_ppm u32 ‖ amount_wei u128 ‖ str(model) ‖
//! opt(str(adapter))`, with role 0 contributor, 1 treasury, 2 model owner, 3 protocol, 4
//! training contributor, 5 credit, 6 charge, 7 refund. An entry of a money movement (credit,
//! charge, refund: see `money`) is followed by the postcard encoding of its [`EntryDetail`]
//! both in its stored value and in its canonical encoding; a payment has none, so every entry
//! written before money movements hashes as it did.
//!
//! Payouts (what epochs sum and contracts pay) are the entries whose role
//! [`Role::is_payout`]; credits and charges move prepaid balances only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::hash::{hex32, keccak256};
use crate::model::{Address, DatanetId, RecordId};
use crate::money::EntryDetail;

/// An answer's id: keccak256 over what the answer was (question, text, sources, time).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AnswerId(pub [u8; 32]);

impl fmt::Display for AnswerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex32(&self.0))
    }
}

impl fmt::Debug for AnswerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for AnswerId {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordId::from_str(s)
            .map(|id| Self(id.0))
            .map_err(|_| StorageError::Invalid(format!("invalid answer id '{s}'")))
    }
}

/// Why an account is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// The contributor of a cited (or measured-used) record.
    Contributor,
    /// A Datanet's treasury: the data share of an answer that used no source.
    Treasury,
    /// The owner of the model (or adapter) that answered.
    ModelOwner,
    /// The protocol's share.
    Protocol,
    /// The contributor of a record an adapter that answered was trained on.
    TrainingContributor,
    /// Money into a caller's prepaid account (a deposit or an admin credit): not a payout.
    Credit,
    /// Money out of a caller's prepaid account (an answer's fee or a refund): not a payout.
    Charge,
    /// A caller's unspent balance paid back to it, claimed like any payout.
    Refund,
}

impl Role {
    /// Its name in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contributor => "contributor",
            Self::Treasury => "treasury",
            Self::ModelOwner => "model_owner",
            Self::Protocol => "protocol",
            Self::TrainingContributor => "training_contributor",
            Self::Credit => "credit",
            Self::Charge => "charge",
            Self::Refund => "refund",
        }
    }

    /// Whether an entry of this role is owed to its account (summed by epochs, claimed on
    /// chain), as opposed to moving a prepaid balance.
    pub fn is_payout(self) -> bool {
        !matches!(self, Self::Credit | Self::Charge)
    }

    fn code(self) -> u8 {
        match self {
            Self::Contributor => 0,
            Self::Treasury => 1,
            Self::ModelOwner => 2,
            Self::Protocol => 3,
            Self::TrainingContributor => 4,
            Self::Credit => 5,
            Self::Charge => 6,
            Self::Refund => 7,
        }
    }
}

/// One payment of an answer, as the caller hands it to the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    /// The Datanet of the source (contributor and treasury entries).
    pub datanet_id: Option<DatanetId>,
    /// The source record (contributor entries).
    pub record_id: Option<RecordId>,
    /// The source chunk (contributor entries).
    pub chunk_id: Option<u64>,
    /// Who is paid.
    pub to: Address,
    /// Why.
    pub role: Role,
    /// The source's attribution weight in parts per million (0 for fixed shares).
    pub weight_ppm: u32,
    /// The amount, in wei.
    pub amount_wei: u128,
}

/// A ledger entry as stored: a payment with its place in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the ledger, from 1.
    pub seq: u64,
    /// The answer that caused it.
    pub answer_id: AnswerId,
    /// When the answer was recorded (ms since the epoch).
    pub ts_ms: i64,
    /// Who asked.
    pub caller: Option<Address>,
    /// The payment.
    pub payment: NewEntry,
    /// The model that answered.
    pub model: String,
    /// The adapter(s) it used, if any.
    pub adapter: Option<String>,
    /// The previous entry's hash (zero for the first).
    pub prev_hash: [u8; 32],
    /// keccak256(prev_hash ‖ canonical encoding).
    pub entry_hash: [u8; 32],
    /// What a money movement carries (stored after the struct; `None` for payments).
    #[serde(skip)]
    pub detail: EntryDetail,
}

fn put_opt(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl LedgerEntry {
    /// The canonical encoding (see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let p = &self.payment;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.answer_id.0);
        out.extend_from_slice(&self.ts_ms.to_be_bytes());
        put_opt(&mut out, self.caller.as_ref().map(|a| &a.0[..]));
        put_opt(
            &mut out,
            p.datanet_id.map(u32::to_be_bytes).as_ref().map(|b| &b[..]),
        );
        put_opt(&mut out, p.record_id.as_ref().map(|r| &r.0[..]));
        put_opt(
            &mut out,
            p.chunk_id.map(u64::to_be_bytes).as_ref().map(|b| &b[..]),
        );
        out.extend_from_slice(&p.to.0);
        out.push(p.role.code());
        out.extend_from_slice(&p.weight_ppm.to_be_bytes());
        out.extend_from_slice(&p.amount_wei.to_be_bytes());
        put_str(&mut out, &self.model);
        match &self.adapter {
            Some(adapter) => {
                out.push(1);
                put_str(&mut out, adapter);
            }
            None => out.push(0),
        }
        if self.detail != EntryDetail::None {
            // postcard of a value built here cannot fail; an empty detail would only break
            // this entry's own hash, which verification then names.
            if let Ok(bytes) = postcard::to_allocvec(&self.detail) {
                out.extend_from_slice(&bytes);
            }
        }
        out
    }

    /// The hash this entry must have given its `prev_hash`.
    pub fn computed_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(32 + 256);
        bytes.extend_from_slice(&self.prev_hash);
        bytes.extend_from_slice(&self.canonical());
        keccak256(&bytes)
    }
}

/// A source an answer cited (or used, in measured attribution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CitationRecord {
    /// The marker number in the answer text (`[n]`); 0 when the source was not cited but
    /// measured as used.
    pub marker: u32,
    /// The chunk.
    pub chunk_id: u64,
    /// Its record.
    pub record_id: RecordId,
    /// Its Datanet.
    pub datanet_id: DatanetId,
    /// The record's contributor.
    pub contributor: Address,
    /// The retrieval score of the chunk.
    pub retrieval_score: f32,
    /// Attribution weight, parts per million of the data share.
    pub weight_ppm: u32,
}

/// An answer as the ledger keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerRecord {
    /// Its id.
    pub answer_id: AnswerId,
    /// When it was recorded.
    pub ts_ms: i64,
    /// Who asked.
    pub caller: Option<Address>,
    /// The Datanets it retrieved from, then the Datanets its adapters trained on (recorded
    /// since issue 24; older answers name those only in their training contributors' entries).
    pub datanet_ids: Vec<DatanetId>,
    /// The question.
    pub question: String,
    /// The answer text.
    pub text: String,
    /// The model.
    pub model: String,
    /// The adapter(s).
    pub adapter: Option<String>,
    /// The fee, in wei.
    pub fee_wei: u128,
    /// "cited" or "loo".
    pub attribution: String,
    /// How each trained adapter's training share was split, `0xID:influence` or
    /// `0xID:tokens` joined by commas (None without trained adapters, and in answers recorded
    /// before influence attribution). Stored as an extension after the struct
    /// (`codec::encode_answer`), so older answers read unchanged.
    #[serde(skip)]
    pub training_attribution: Option<String>,
    /// The sources it cited (verified markers) or used.
    pub citations: Vec<CitationRecord>,
    /// Its first ledger entry.
    pub first_seq: u64,
    /// How many entries it has.
    pub entries: u32,
}

/// A closed epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    /// Its number, from 1.
    pub epoch: u64,
    /// First entry it covers.
    pub first_seq: u64,
    /// One past the last entry it covers.
    pub end_seq: u64,
    /// Merkle root of every account's cumulative balance at its end.
    pub root: [u8; 32],
    /// Accounts with a balance.
    pub accounts: u64,
    /// Sum of the cumulative balances, in wei.
    pub total_wei: u128,
    /// The ledger head (hash of entry `end_seq - 1`) it committed to.
    pub ledger_head: [u8; 32],
    /// When it was closed.
    pub closed_at_ms: i64,
}

/// What `verify_ledger` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerCheck {
    /// Entries read.
    pub entries: u64,
    /// The first broken entry, if any, and why.
    pub broken: Option<(u64, String)>,
    /// Hash of the last good entry.
    pub head: [u8; 32],
    /// Each closed epoch as its entries give it (up to the first broken entry): what the
    /// chain's roots and ledger heads are compared with (`provdb chain verify`).
    pub epochs: Vec<ReplayedEpoch>,
}

/// A closed epoch recomputed from the ledger entries it covers, not read from its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayedEpoch {
    /// Its number.
    pub epoch: u64,
    /// The hash of its last entry.
    pub ledger_head: [u8; 32],
    /// The Merkle root of the cumulative balances its entries add up to.
    pub root: [u8; 32],
    /// Their sum, in wei.
    pub total_wei: u128,
}

/// Who owns the model and what the protocol takes of every price: stored in the database, set
/// by the operator. A share above 0 basis points needs an account to pay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPolicy {
    /// Owner of the model that answers: paid the model's price.
    pub model_owner: Option<Address>,
    /// Unused since answers are priced (the model's owner is paid the model's price); kept so
    /// that policies stored before read.
    pub model_owner_bps: u16,
    /// The protocol's account (also the treasury of a Datanet without owner).
    pub protocol: Option<Address>,
    /// Its share in basis points.
    pub protocol_bps: u16,
}

impl LedgerPolicy {
    /// Refuses shares above the whole fee and shares without an account.
    pub fn validate(&self) -> Result<(), StorageError> {
        if u32::from(self.model_owner_bps) + u32::from(self.protocol_bps) > 10_000 {
            return Err(StorageError::Invalid(format!(
                "model owner ({}) and protocol ({}) shares exceed 10000 basis points",
                self.model_owner_bps, self.protocol_bps
            )));
        }
        if (self.model_owner_bps > 0 && self.model_owner.is_none())
            || (self.protocol_bps > 0 && self.protocol.is_none())
        {
            return Err(StorageError::Invalid(
                "a share above 0 basis points needs an account to pay it to".into(),
            ));
        }
        Ok(())
    }
}

/// What a fee policy applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyScope {
    /// Every answer without a more specific policy.
    Default,
    /// Answers by this model.
    Model(String),
    /// Answers that read only this Datanet.
    Datanet(DatanetId),
}

impl PolicyScope {
    /// Its key in the meta column family.
    pub(crate) fn key(&self) -> Vec<u8> {
        let mut key = b"ledger_policy".to_vec();
        match self {
            Self::Default => {}
            Self::Model(name) => {
                key.extend_from_slice(b":model:");
                key.extend_from_slice(name.as_bytes());
            }
            Self::Datanet(id) => {
                key.extend_from_slice(b":datanet:");
                key.extend_from_slice(&id.to_be_bytes());
            }
        }
        key
    }
}
