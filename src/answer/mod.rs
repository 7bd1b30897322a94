//! Cited answers: retrieve → prompt with numbered sources → generate (streaming) → keep the
//! citation markers that point at a retrieved source → attribute → split the fee → append the
//! answer and its payments to the ledger in one write. [`crate::Db::ask`] is the entry point.
//!
//! The pipeline sits above `query` and `index`: it retrieves through the database's own
//! search ([`crate::Db::search_hits`]), checks access with query's `Caller`, generates with
//! `inference` and writes the ledger through `storage`.
//!
//! - `request.rs`: [`AskRequest`] and its limits, [`Answer`] and what it carries (the JSON
//!   shapes of the CLI and the HTTP API).
//! - `sources.rs`: retrieval over the Datanets the caller may read.
//! - [`prompt`]: the numbered sources in the model's chat template, tokenized in parts.
//! - [`citations`]: markers in the generated text, verified against the sources.
//! - [`attribution`]: one module per method behind one trait, chosen by [`Attribution`].
//! - [`price`]: what an answer costs from the prices owners set ([`price::Quote`]), and its
//!   split part by part.
//! - `holds.rs`: the balance an answer in flight holds of its caller's account.
//! - [`split`]: the exact integer split of one part over weighted sources.
//! - `record.rs`: the citations, ledger entries and id an answer records.
//! - `model.rs`: the model a database answers with, its adapters and batching generator.
//! - `pipeline.rs`: the steps in order.
//!
//! Invariants: a caller only retrieves from Datanets it may read (an unreadable Datanet is
//! reported like an unknown one); no caller chooses a price, only caps it; an answer is made
//! only for a caller whose balance holds its upper-bound price, and the fee is charged to that
//! balance in the write that records the answer; only verified markers are citations; a
//! source retrieved but not used is never paid (with no paid source, a Datanet's part goes to
//! its treasury, recorded with role `treasury`); the payments sum exactly to the fee; nothing
//! is written unless the whole answer is.

pub mod attribution;
pub mod citations;
mod holds;
pub mod influence;
pub(crate) mod model;
pub(crate) mod pipeline;
pub mod price;
pub mod prompt;
mod record;
mod request;
mod sources;
pub mod split;
pub mod training_split;

pub use attribution::Attribution;
pub(crate) use holds::Holds;
pub use influence::{TrainingAttribution, TrainingRecordScore};
pub use price::{PricedAdapter, Quote, split_priced};
pub use request::{
    Answer, AskRequest, Citation, DEFAULT_MAX_FEE_WEI, MAX_ANSWER_TOKENS, MAX_QUESTION_BYTES,
    MAX_SOURCES, Payment, Usage, check_fee,
};
pub use split::{SplitPolicy, WeightedSource, split_fee};
pub use training_split::TrainingPool;
