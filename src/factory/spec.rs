//! What a fine-tuning job is asked to do: [`FineTuneSpec`] (the request) and [`StoredSpec`]
//! (the request with what the server adds: the model, whether the owner is an admin, and the
//! API key it came with), and the job's id ([`JobId`]).

use provdb_inference::train::TrainingConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a row becomes a training example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataFormat {
    /// Plain text to continue: every token is trained on.
    Completion {
        /// The column holding the text (default: the Datanet's text column).
        #[serde(default)]
        column: Option<String>,
    },
    /// An instruction and its response, in the model's chat template; only the response is
    /// trained on.
    Instruction {
        /// The instruction's column.
        #[serde(default = "instruction_column")]
        instruction: String,
        /// The response's column.
        #[serde(default = "response_column")]
        response: String,
    },
    /// A conversation (a JSON array of `{role, content}`); the last assistant message is
    /// trained on, the messages before it are the prompt.
    Chat {
        /// The column holding the messages.
        #[serde(default = "messages_column")]
        messages: String,
    },
}

fn instruction_column() -> String {
    "instruction".into()
}

fn response_column() -> String {
    "response".into()
}

fn messages_column() -> String {
    "messages".into()
}

impl Default for DataFormat {
    fn default() -> Self {
        Self::Completion { column: None }
    }
}

/// Basis points of an adapter's price in an answer paid to its training contributors, unless
/// the job says otherwise.
pub const DEFAULT_TRAINING_SHARE_BPS: u32 = 1000;

/// The most basis points a job may pay its training contributors: the whole adapter price.
pub const MAX_TRAINING_SHARE_BPS: u32 = 10_000;

fn default_share() -> u32 {
    DEFAULT_TRAINING_SHARE_BPS
}

/// How an adapter's training share is split among its training contributors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingAttribution {
    /// By each answer's measured influence: every training record's projected gradient is
    /// stored with the adapter, and an answer pays the records whose gradients point the way
    /// its own does.
    #[default]
    Influence,
    /// By the tokens each contributor's records trained, the same in every answer (the cheap
    /// fallback: no gradient store).
    Tokens,
}

impl TrainingAttribution {
    /// Its name (`influence`, `tokens`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Influence => "influence",
            Self::Tokens => "tokens",
        }
    }
}

/// The most training records a job with influence attribution keeps gradients of (scoring
/// factors an `n × n` kernel of them once per adapter: 2,048 records take 32 MiB and seconds).
pub const MAX_INFLUENCE_RECORDS: usize = 2_048;

fn default_projection_width() -> usize {
    provdb_inference::train::GradientProjection::default().width
}

/// A fine-tuning request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineTuneSpec {
    /// The base model to train (default: the loaded generator, the only one a database
    /// trains; another name is refused).
    #[serde(default)]
    pub model: Option<String>,
    /// The Datanet to train on.
    pub datanet: String,
    /// A SQL query over it whose `record_id` column selects the records to train on (their
    /// text is always read from the store, never from the query's other columns); default:
    /// every live approved record of the Datanet.
    #[serde(default)]
    pub query: Option<String>,
    /// How rows become examples.
    #[serde(default)]
    pub format: DataFormat,
    /// Hyperparameters (missing ones take their defaults).
    #[serde(default)]
    pub hyperparameters: TrainingConfig,
    /// Basis points of the adapter's price in every answer paid to the training contributors
    /// (0..=[`MAX_TRAINING_SHARE_BPS`]).
    #[serde(default = "default_share")]
    pub training_share_bps: u32,
    /// How the training share is split (default `influence`).
    #[serde(default)]
    pub training_attribution: TrainingAttribution,
    /// Rows of each gradient projection matrix with `influence`: a record's stored gradient
    /// has `2 · rank · width` numbers per trained module (1..=256, default 8).
    #[serde(default = "default_projection_width")]
    pub influence_projection_width: usize,
}

impl FineTuneSpec {
    /// A request with the defaults for `datanet`.
    pub fn new(datanet: impl Into<String>) -> Self {
        Self {
            model: None,
            datanet: datanet.into(),
            query: None,
            format: DataFormat::default(),
            hyperparameters: TrainingConfig::default(),
            training_share_bps: DEFAULT_TRAINING_SHARE_BPS,
            training_attribution: TrainingAttribution::default(),
            influence_projection_width: default_projection_width(),
        }
    }

    /// Checks what needs no model or data: the training share is at most the whole adapter price.
    pub fn validate(&self) -> Result<()> {
        if self.training_share_bps > MAX_TRAINING_SHARE_BPS {
            return Err(Error::Invalid(format!(
                "training_share_bps must be 0..={MAX_TRAINING_SHARE_BPS} basis points (at most \
                 the whole adapter price), got {}",
                self.training_share_bps
            )));
        }
        let widest = provdb_inference::train::MAX_PROJECTION_WIDTH;
        if !(1..=widest).contains(&self.influence_projection_width) {
            return Err(Error::Invalid(format!(
                "influence_projection_width must be 1..={widest}, got {}",
                self.influence_projection_width
            )));
        }
        Ok(())
    }
}

/// A request as a job stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSpec {
    /// The base model's name (the loaded generator's).
    pub model: String,
    /// Whether the owner reads every Datanet (an admin). Only a job without `key_id` (made
    /// by the embedding application or the local CLI) runs with it; a key's job reads as its
    /// key does when it starts.
    pub as_admin: bool,
    /// The id (hex) of the API key the job was created with: the job runs and publishes only
    /// while that key is not revoked, with that key's access at the time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The request.
    pub spec: FineTuneSpec,
}

/// A job's id: 16 random bytes, written `ftjob-<32 hex digits>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub [u8; 16]);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ftjob-{}", hex::encode(self.0))
    }
}

impl std::str::FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let digits = s.strip_prefix("ftjob-").unwrap_or(s);
        let mut id = [0u8; 16];
        hex::decode_to_slice(digits, &mut id).map_err(|_| {
            Error::Invalid(format!("invalid job id '{s}' (ftjob- and 32 hex digits)"))
        })?;
        Ok(Self(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_training_share_over_the_whole_data_share_is_refused_not_clamped() {
        let mut spec = FineTuneSpec::new("qa");
        for ok in [0, 1, DEFAULT_TRAINING_SHARE_BPS, MAX_TRAINING_SHARE_BPS] {
            spec.training_share_bps = ok;
            assert!(spec.validate().is_ok(), "{ok}");
        }
        spec.training_share_bps = MAX_TRAINING_SHARE_BPS + 1;
        let refused = spec.validate().unwrap_err();
        assert!(refused.is_user_error());
        assert!(
            refused
                .to_string()
                .contains("training_share_bps must be 0..=10000"),
            "{refused}"
        );
        let negative =
            serde_json::from_str::<FineTuneSpec>(r#"{"datanet": "qa", "training_share_bps": -1}"#);
        assert!(negative.is_err());
    }
}
