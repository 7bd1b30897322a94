//! What an adapter trained by the Model Factory records of its training: the job, the Datanet,
//! the Merkle root of the record ids it trained on (the ids themselves are stored beside it in
//! `training-records.json`), the hash of its hyperparameters, and what its training data
//! earns: `share_bps` of the adapter's price in every answer made with it, split over the records'
//! contributors by each answer's measured influence (`attribution` `influence`, from the gradient
//! store beside it) or in proportion to the tokens of theirs it trained on (`tokens`).

use serde::{Deserialize, Serialize};

/// One contributor of an adapter's training data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrainingContributor {
    /// Its address (`0x`, lower case).
    pub address: String,
    /// Tokens of its records in the training set.
    pub tokens: u64,
}

/// An adapter's training provenance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrainingProvenance {
    /// The fine-tuning job that made it.
    pub job_id: String,
    /// The Datanet it trained on.
    pub datanet: String,
    /// Merkle root of the record ids it trained on (storage's `record_ids_root`).
    pub records_root: String,
    /// How many records.
    pub records: u64,
    /// keccak256 of its hyperparameters as JSON.
    pub config_hash: String,
    /// Basis points of the adapter's price in an answer paid to the training contributors.
    pub share_bps: u32,
    /// Who contributed the training data, by address.
    pub contributors: Vec<TrainingContributor>,
    /// How the share is split: `influence` (by each answer's measured influence, from the
    /// gradient store) or `tokens` (by `contributors`' tokens). Adapters published before
    /// influence existed read as `tokens`.
    #[serde(default = "tokens")]
    pub attribution: String,
    /// The gradient store beside the adapter, with `influence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradients: Option<GradientStoreInfo>,
}

fn tokens() -> String {
    "tokens".into()
}

/// What a gradient store holds and cost.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GradientStoreInfo {
    /// keccak256 of the file (0x-hex): the store published is the store trained.
    pub file_keccak: String,
    /// Its size.
    pub bytes: u64,
    /// Training records in it (one gradient each; held-out records have none).
    pub rows: u64,
    /// Numbers per gradient.
    pub dim: u64,
    /// The projection's width.
    pub projection_width: u64,
    /// Milliseconds training spent projecting and storing gradients.
    pub milliseconds: u64,
}

/// The file beside an adapter listing the record ids it trained on.
pub const TRAINING_RECORDS_FILE: &str = "training-records.json";
