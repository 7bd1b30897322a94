//! What an answer is asked with and what it returns: [`AskRequest`], [`Answer`] with its
//! [`Citation`]s, [`Payment`]s and [`Usage`], and the limits a request is checked against.
//! The serde shapes here are the JSON the CLI prints and the HTTP API returns.
//!
//! A request carries no fee: the fee is computed from the prices owners set (`price`). It
//! may carry `max_fee_wei`, the most its caller will pay; the operator's cap on one fee
//! ([`DEFAULT_MAX_FEE_WEI`], or `Db::with_max_fee_wei`) bounds every price ([`check_fee`]) and
//! every answer. Storage's ledger append keeps the arithmetic bound (the ledger's total fits a
//! `u128`) and the conservation rule (payouts sum to the fee charged), which hold for every
//! writer.

use provdb_index::Mode;
use provdb_query::Caller;
use provdb_storage::{Address, AnswerId, RecordId, Role};
use serde::{Serialize, Serializer};

use crate::answer::attribution::Attribution;
use crate::error::{Error, Result};

/// A question to answer.
#[derive(Clone, Debug)]
pub struct AskRequest {
    /// Datanets to retrieve from.
    pub datanets: Vec<String>,
    /// The question.
    pub question: String,
    /// Sources to retrieve (over all Datanets).
    pub k: usize,
    /// Retrievers.
    pub mode: Mode,
    /// LoRA adapters, each `ID[:WEIGHT]` (an id or a unique prefix; weight 1 by default),
    /// composed unmerged over the model.
    pub adapters: Vec<String>,
    /// The most the caller will pay, in wei: an answer priced above it is refused before any
    /// work (None: up to the operator's cap).
    pub max_fee_wei: Option<u128>,
    /// How sources are weighted.
    pub attribution: Attribution,
    /// Who asks.
    pub caller: Caller,
    /// Longest answer, in tokens.
    pub max_tokens: usize,
}

impl Default for AskRequest {
    fn default() -> Self {
        Self {
            datanets: Vec::new(),
            question: String::new(),
            k: 4,
            mode: Mode::Hybrid,
            adapters: Vec::new(),
            max_fee_wei: None,
            attribution: Attribution::Cited,
            caller: Caller::anonymous(),
            max_tokens: 160,
        }
    }
}

impl AskRequest {
    /// Refuses a request outside the limits: an empty or too long question, no Datanet, `k`
    /// outside 1..=[`MAX_SOURCES`], `max_tokens` outside 1..=[`MAX_ANSWER_TOKENS`].
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if self.question.trim().is_empty() {
            return invalid("the question is empty".into());
        }
        if self.question.len() > MAX_QUESTION_BYTES {
            return invalid(format!(
                "the question is {} bytes, at most {MAX_QUESTION_BYTES}",
                self.question.len()
            ));
        }
        if self.datanets.is_empty() {
            return invalid("name at least one Datanet to answer from".into());
        }
        if self.k == 0 || self.k > MAX_SOURCES {
            return invalid(format!("k must be in 1..={MAX_SOURCES}, got {}", self.k));
        }
        if self.max_tokens == 0 || self.max_tokens > MAX_ANSWER_TOKENS {
            return invalid(format!(
                "max_tokens must be in 1..={MAX_ANSWER_TOKENS}, got {}",
                self.max_tokens
            ));
        }
        Ok(())
    }
}

/// Refuses a price above `max_fee_wei` (a user error naming the cap and its setting).
pub fn check_fee(fee_wei: u128, max_fee_wei: u128) -> Result<()> {
    if fee_wei > max_fee_wei {
        return Err(Error::Invalid(format!(
            "a price of {fee_wei} wei is above the maximum fee of {max_fee_wei} wei per answer \
             (the operator's --max-fee-wei)"
        )));
    }
    Ok(())
}

/// The largest fee one answer may carry unless the operator sets another: 10^30 wei
/// (10^12 ether), far above any real price and far below where sums of fees could wrap.
pub const DEFAULT_MAX_FEE_WEI: u128 = 1_000_000_000_000_000_000_000_000_000_000;

/// Longest accepted question, in bytes.
pub const MAX_QUESTION_BYTES: usize = 4096;
/// Most sources per answer.
pub const MAX_SOURCES: usize = 16;
/// Longest answer a request may ask for, in tokens.
pub const MAX_ANSWER_TOKENS: usize = 1024;

fn as_display<T: std::fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// A verified citation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Citation {
    /// The marker number in the answer (`[n]`); 0 for a source measured as used but not cited.
    pub marker: u32,
    /// The chunk.
    pub chunk_id: u64,
    /// Its record.
    #[serde(serialize_with = "as_display")]
    pub record_id: RecordId,
    /// Its Datanet.
    pub datanet: String,
    /// The record's contributor.
    #[serde(serialize_with = "as_display")]
    pub contributor: Address,
    /// The start of the chunk's text.
    pub snippet: String,
    /// Its retrieval score.
    pub retrieval_score: f32,
    /// Its share of the data fee, parts per million.
    pub weight_ppm: u32,
}

/// One payment of the split.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Payment {
    /// Who.
    #[serde(serialize_with = "as_display")]
    pub to: Address,
    /// Why.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// How much, in wei (a decimal string in JSON).
    #[serde(serialize_with = "as_display")]
    pub amount_wei: u128,
}

fn role_name<S: Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// Time and tokens an answer took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Retrieval, ms.
    pub retrieval_ms: f64,
    /// Prompt prefill and decoding, ms.
    pub generation_ms: f64,
    /// Time to the first token's text (the prefill, mostly), ms.
    pub first_token_ms: f64,
    /// Attribution (leave-one-out scoring), ms.
    pub attribution_ms: f64,
}

/// A cited answer.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// Its id in the ledger.
    #[serde(serialize_with = "as_display")]
    pub answer_id: AnswerId,
    /// The text.
    pub answer: String,
    /// Its verified citations (and, with `loo`, the sources measured as used).
    pub citations: Vec<Citation>,
    /// Markers that pointed at no source, dropped.
    pub dropped_markers: Vec<u32>,
    /// The model.
    pub model: String,
    /// The adapters, `0xID:WEIGHT` each.
    pub adapters: Vec<String>,
    /// The attribution mode.
    pub attribution: Attribution,
    /// Tokens and time.
    pub usage: Usage,
    /// The fee charged to the caller, in wei: the prices of the model (with the tokens it
    /// generated), the Datanets and the adapters.
    #[serde(serialize_with = "as_display")]
    pub fee_wei: u128,
    /// Who is paid what; the amounts sum to the fee.
    pub split: Vec<Payment>,
    /// How each trained adapter's training share was split: by `influence` (with its most
    /// influential training records) or by `tokens`.
    pub training_attribution: Vec<crate::answer::TrainingAttribution>,
}
