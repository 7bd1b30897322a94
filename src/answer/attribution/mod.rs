//! Attribution: how much each retrieved source is paid for an answer. Each method is one file
//! behind `AttributionMethod`; the closed enum [`Attribution`] names the methods a request
//! may choose and dispatches to them, so a new method is one file plus one variant.
//!
//! A method reads an `AttributionContext`: the sources with their retrieval scores, the
//! verified citations, the answer's tokens, the prompt in parts and the model, and, when its
//! `Needs` ask for it, what only the generation itself can give (today the generation's own
//! KV cache). It returns one weight per source, in the sources' order; only ratios matter, and
//! a weight of 0 is never paid (the fee split relies on it).
//!
//! - `cited` ([`cited`]): the verified citation markers, weighted by retrieval score.
//! - `loo` ([`loo`]): leave-one-out, how much removing each source lowers the answer's
//!   log-probability.

pub mod cited;
pub mod loo;

use provdb_inference::llama::{LlamaModel, Sequence};
use serde::Serialize;

use crate::answer::prompt::PromptTokens;
use crate::answer::sources::Source;
use crate::error::{Error, Result};

/// Who is paid for an answer, and how much: the method a request chooses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribution {
    /// The verified citation markers, weighted by retrieval score.
    #[default]
    Cited,
    /// Leave-one-out: each source weighted by how much removing it lowers the answer's
    /// log-probability.
    Loo,
}

impl std::str::FromStr for Attribution {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cited" => Ok(Self::Cited),
            "loo" => Ok(Self::Loo),
            other => Err(Error::Invalid(format!(
                "unknown attribution '{other}' (cited, loo)"
            ))),
        }
    }
}

impl Attribution {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cited => "cited",
            Self::Loo => "loo",
        }
    }

    /// The implementation of this method.
    pub(crate) fn method(self) -> &'static dyn AttributionMethod {
        match self {
            Self::Cited => &cited::Cited,
            Self::Loo => &loo::LeaveOneOut,
        }
    }
}

/// What a method needs beyond what every context holds, so the pipeline can provide it (a
/// later need, such as an adapter's gradients, is one more field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// The generation's own KV cache ([`AttributionContext::generation`]): the answer is then
    /// generated in a session of its own, never on the batching generator.
    pub(crate) generation_cache: bool,
}

/// Everything an attribution method may read about one answer.
pub(crate) struct AttributionContext<'a> {
    /// The retrieved sources in prompt order (source `n` is `sources[n - 1]`), each with its
    /// retrieval score.
    pub(crate) sources: &'a [Source],
    /// The verified citation markers (source numbers from 1), in order of first citation.
    pub(crate) cited: &'a [u32],
    /// The answer's generated tokens, up to and including an end-of-turn token.
    pub(crate) answer_tokens: &'a [u32],
    /// The prompt in parts (the prompt without a source is built from them).
    pub(crate) prompt: &'a PromptTokens,
    /// The model that answered.
    pub(crate) model: &'a LlamaModel,
    /// The generation's KV cache (the full prompt, then the answer); present when the method
    /// needs [`Needs::generation_cache`].
    pub(crate) generation: Option<&'a Sequence>,
}

/// One way of weighing an answer's sources.
pub(crate) trait AttributionMethod {
    /// What this method needs the pipeline to provide.
    fn needs(&self) -> Needs;

    /// One weight per source of `context.sources`, in their order (0: not paid).
    fn weights(&self, context: &AttributionContext<'_>) -> Result<Vec<u64>>;
}
