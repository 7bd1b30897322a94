//! Money that comes in and what it may be spent on: prices set by owners ([`Price`],
//! [`PriceScope`]), callers' prepaid accounts ([`AccountState`]), where a credit came from
//! ([`CreditSource`], with the on-chain [`DepositKey`] that makes a deposit count once), and
//! the detail a ledger entry of a money movement carries ([`EntryDetail`]).
//!
//! Invariants (kept by `store::accounts` and `store::ledger`, under the ledger's lock and in
//! the ledger's own `WriteBatch`):
//! - an account's `balance_wei = credited_wei - charged_wei`, never negative: a charge larger
//!   than the balance is refused with [`crate::StorageError::InsufficientFunds`] and writes
//!   nothing;
//! - every credit and every charge is a hash-chained ledger entry (roles `credit` and
//!   `charge`), so Σ credit entries = Σ balances + Σ charge entries, and the payouts an answer
//!   or refund writes sum exactly to its charge;
//! - a deposit key is credited at most once: the deposit's row and its credit entry commit in
//!   one write, and a key already stored is skipped.

use serde::{Deserialize, Serialize};

use crate::hash::keccak256;
use crate::model::{Address, DatanetId};

/// What a price applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PriceScope {
    /// Answers by this model (set by an admin).
    Model(String),
    /// Answers that retrieve from this Datanet (set by its owner).
    Datanet(DatanetId),
    /// Answers made with this adapter (set by its owner).
    Adapter([u8; 32]),
}

impl PriceScope {
    /// Its key in the `prices` column family: a kind byte, then the name or id.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            Self::Model(name) => [b"m".as_slice(), name.as_bytes()].concat(),
            Self::Datanet(id) => [b"d".as_slice(), &id.to_be_bytes()].concat(),
            Self::Adapter(id) => [b"a".as_slice(), id].concat(),
        }
    }

    /// Its kind as tables and JSON name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Model(_) => "model",
            Self::Datanet(_) => "datanet",
            Self::Adapter(_) => "adapter",
        }
    }
}

/// A price as stored: what an answer pays for one scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// What it applies to.
    pub scope: PriceScope,
    /// Wei per answer.
    pub per_answer_wei: u128,
    /// Wei per 1,000 generated tokens (models only; 0 elsewhere).
    pub per_1k_tokens_wei: u128,
    /// Who set it (None: the local operator, through the CLI).
    pub set_by: Option<Address>,
    /// The sequence number of the change that set it.
    pub sequence: u64,
    /// When it was set (ms since the epoch).
    pub set_at_ms: i64,
}

/// A caller's prepaid account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    /// What it may still spend, in wei.
    pub balance_wei: u128,
    /// Every credit it ever received (deposits and admin credits).
    pub credited_wei: u128,
    /// Every charge (answers and refunds).
    pub charged_wei: u128,
    /// The part of `charged_wei` that was refunded to it as a payout.
    pub refunded_wei: u128,
    /// Answers charged to it.
    pub answers: u64,
}

/// Where an on-chain deposit is: credited once per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DepositKey {
    /// The chain.
    pub chain_id: u64,
    /// The contract that took it.
    pub contract: Address,
    /// The contract's running deposit id.
    pub deposit_id: u64,
}

impl DepositKey {
    /// Its key in the `deposits` column family: chain id ‖ contract ‖ deposit id.
    pub(crate) fn key(&self) -> [u8; 36] {
        let mut key = [0u8; 36];
        key[..8].copy_from_slice(&self.chain_id.to_be_bytes());
        key[8..28].copy_from_slice(&self.contract.0);
        key[28..].copy_from_slice(&self.deposit_id.to_be_bytes());
        key
    }
}

/// A deposit as the chain reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// Where it is.
    pub key: DepositKey,
    /// The account it credits.
    pub account: Address,
    /// How much, in the token's smallest unit.
    pub amount_wei: u128,
    /// The transaction that made it.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block: u64,
}

/// A stored deposit: the deposit and the ledger entry that credited it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditedDeposit {
    /// The deposit.
    pub deposit: Deposit,
    /// Its credit entry's sequence number in the ledger.
    pub ledger_seq: u64,
    /// When it was credited.
    pub credited_at_ms: i64,
}

/// Longest reason an admin credit may carry, in bytes.
pub const MAX_CREDIT_REASON_BYTES: usize = 256;

/// Where a credit came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditSource {
    /// An on-chain deposit.
    Deposit(Deposit),
    /// An administrator's off-chain credit (a card payment, say), with its reason.
    Admin {
        /// The admin (None: the local operator, through the CLI).
        by: Option<Address>,
        /// Why.
        reason: String,
    },
}

/// What a ledger entry of a money movement carries beyond a payment's fields; stored and
/// hashed after the entry (see `ledger`'s canonical encoding). Payments carry none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryDetail {
    /// A payment (or an entry written before money movements existed).
    #[default]
    None,
    /// An answer's charge: what was asked and answered, by hash.
    Answer {
        /// keccak256 of the question.
        question_hash: [u8; 32],
        /// keccak256 of the answer text.
        text_hash: [u8; 32],
    },
    /// A credit.
    Credit(CreditSource),
    /// The charge of a refund: the account's balance moved to a payout of role `refund`.
    Refund,
}

impl EntryDetail {
    /// The detail of an answer's charge.
    pub fn answer(question: &str, text: &str) -> Self {
        Self::Answer {
            question_hash: keccak256(question.as_bytes()),
            text_hash: keccak256(text.as_bytes()),
        }
    }
}
