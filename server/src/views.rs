//! The JSON shapes the CLI's `--json` output and the HTTP API share, so a record, an epoch, a
//! proof or a key reads the same from `provdb ... --json` and from `GET /v1/...`.
//!
//! Invariant: a view holds no secret (an API key's view has neither the key nor its hash) and
//! writes hashes and ids as `0x` hex, amounts of wei as decimal strings (beyond JSON's exact
//! integers).

use provdb::storage::{Epoch, Record, hex32};
use provdb::{Address, ApiKey, Db, EpochProof, Price, PriceScope};
use serde::Serialize;
use serde_json::{Value, json};

/// A closed epoch.
#[derive(Serialize)]
pub(crate) struct EpochView {
    pub(crate) epoch: u64,
    pub(crate) root: String,
    pub(crate) accounts: u64,
    pub(crate) total_wei: String,
    pub(crate) first_seq: u64,
    pub(crate) end_seq: u64,
    pub(crate) ledger_head: String,
    pub(crate) closed_at_ms: i64,
}

impl From<&Epoch> for EpochView {
    fn from(e: &Epoch) -> Self {
        Self {
            epoch: e.epoch,
            root: hex32(&e.root),
            accounts: e.accounts,
            total_wei: e.total_wei.to_string(),
            first_seq: e.first_seq,
            end_seq: e.end_seq,
            ledger_head: hex32(&e.ledger_head),
            closed_at_ms: e.closed_at_ms,
        }
    }
}

/// An account's Merkle proof in an epoch, as a claim contract takes it.
#[derive(Serialize)]
pub(crate) struct ProofView {
    pub(crate) epoch: u64,
    pub(crate) account: String,
    pub(crate) cumulative_wei: String,
    pub(crate) leaf: String,
    pub(crate) proof: Vec<String>,
    pub(crate) root: String,
}

impl From<&EpochProof> for ProofView {
    fn from(p: &EpochProof) -> Self {
        Self {
            epoch: p.epoch,
            account: p.account.to_string(),
            cumulative_wei: p.cumulative_wei.to_string(),
            leaf: hex32(&p.leaf),
            proof: p.proof.iter().map(hex32).collect(),
            root: hex32(&p.root),
        }
    }
}

/// A key as listed: never its secret or the secret's hash.
pub(crate) fn key_view(key: &ApiKey) -> Value {
    json!({
        "key_id": hex::encode(key.key_id),
        "address": key.address.to_string(),
        "role": key.role.as_str(),
        "label": key.label,
        "created_at": key.created_at_ms,
        "revoked_at": key.revoked_at_ms,
    })
}

/// A record: every provenance column, content as JSON.
#[derive(Serialize)]
pub(crate) struct RecordView {
    pub(crate) record_id: String,
    pub(crate) datanet: String,
    pub(crate) contributor: String,
    pub(crate) signature: Option<String>,
    /// `eip712`, or `eip191` for the old scheme.
    pub(crate) signature_scheme: Option<&'static str>,
    pub(crate) license: String,
    pub(crate) created_at: i64,
    pub(crate) version: u32,
    pub(crate) supersedes: Option<String>,
    /// Who stored this version over the one it supersedes, and in which role.
    pub(crate) stored_by: Option<String>,
    pub(crate) stored_as: Option<&'static str>,
    pub(crate) quality: Option<f32>,
    pub(crate) status: &'static str,
    pub(crate) sequence: u64,
    pub(crate) chunks: u32,
    pub(crate) content: Value,
}

impl RecordView {
    pub(crate) fn new(record: &Record, datanet: &str) -> Self {
        Self {
            record_id: record.record_id.to_string(),
            datanet: datanet.to_string(),
            contributor: record.contributor.to_string(),
            signature: record
                .signature
                .as_ref()
                .map(|s| format!("0x{}", hex::encode(s))),
            signature_scheme: record.signature_scheme.map(|s| s.as_str()),
            license: record.license.clone(),
            created_at: record.created_at_ms,
            version: record.version,
            supersedes: record.supersedes.map(|s| s.to_string()),
            stored_by: record.act.map(|act| act.by.to_string()),
            stored_as: record.act.map(|act| act.role.as_str()),
            quality: record.quality,
            status: record.status.as_str(),
            sequence: record.sequence,
            chunks: record.chunk_count(),
            content: serde_json::from_str(&record.content)
                .unwrap_or(Value::String(record.content.clone())),
        }
    }
}

/// A price as the CLI and HTTP API print it.
#[derive(Serialize)]
pub(crate) struct PriceView {
    pub(crate) kind: &'static str,
    /// The model's name, the Datanet's name or the adapter's id.
    pub(crate) name: String,
    pub(crate) per_answer_wei: String,
    pub(crate) per_1k_tokens_wei: String,
    pub(crate) set_by: Option<String>,
    pub(crate) sequence: u64,
    pub(crate) set_at_ms: i64,
}

impl PriceView {
    pub(crate) fn new(db: &Db, price: &Price) -> provdb::Result<Self> {
        let name = match &price.scope {
            PriceScope::Model(name) => name.clone(),
            PriceScope::Datanet(id) => db.store().datanet_by_id(*id)?.name,
            PriceScope::Adapter(id) => format!("0x{}", hex::encode(id)),
        };
        Ok(Self {
            kind: price.scope.kind(),
            name,
            per_answer_wei: price.per_answer_wei.to_string(),
            per_1k_tokens_wei: price.per_1k_tokens_wei.to_string(),
            set_by: price.set_by.map(|a| a.to_string()),
            sequence: price.sequence,
            set_at_ms: price.set_at_ms,
        })
    }
}

/// An account as the CLI and HTTP API print it (amounts as decimal strings).
#[derive(Serialize)]
pub(crate) struct AccountView {
    pub(crate) address: String,
    pub(crate) balance_wei: String,
    pub(crate) held_wei: String,
    pub(crate) credited_wei: String,
    pub(crate) charged_wei: String,
    pub(crate) refunded_wei: String,
    pub(crate) answers: u64,
}

impl AccountView {
    pub(crate) fn of(db: &Db, address: Address) -> provdb::Result<Self> {
        let (state, held) = db.account(&address)?;
        Ok(Self {
            address: address.to_string(),
            balance_wei: state.balance_wei.to_string(),
            held_wei: held.to_string(),
            credited_wei: state.credited_wei.to_string(),
            charged_wei: state.charged_wei.to_string(),
            refunded_wei: state.refunded_wei.to_string(),
            answers: state.answers,
        })
    }
}
