//! Fine-tuning jobs as storage keeps them: a record per job (its request and result as JSON
//! documents the root crate defines, so this crate stays free of training types) and its
//! events in order; and the acts that make a trained adapter public or private again
//! ([`AdapterAct`]: who, when, which way), kept in order per adapter so the last one decides.
//! Like the access metadata, jobs and acts are written in synced writes of their own, outside
//! the change log: nothing is derived from them.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::model::Address;

/// Where a job is in its life (OpenAI's fine-tuning states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting for the trainer.
    Queued,
    /// Training.
    Running,
    /// Done; its adapter is written.
    Succeeded,
    /// Stopped by an error.
    Failed,
    /// Stopped on request; it may be resumed from its last checkpoint.
    Cancelled,
}

impl JobStatus {
    /// The lower-case name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job will not change again by itself.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl FromStr for JobStatus {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(StorageError::Invalid(format!(
                    "unknown job status '{other}' (queued, running, succeeded, failed, cancelled)"
                )));
            }
        })
    }
}

/// A job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id (random).
    pub job_id: [u8; 16],
    /// Who made it (it trains on what this address may read).
    pub owner: Address,
    /// When it was made, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
    /// Where it is.
    pub status: JobStatus,
    /// The request, as JSON.
    pub spec_json: String,
    /// What it produced (adapter, evaluation), as JSON, once it has.
    pub result_json: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One event of a job (a training step, a status change, an evaluation), as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Its number within the job, from 1.
    pub seq: u64,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// What happened, as JSON.
    pub json: String,
}

/// A recorded act on a trained adapter's visibility: `by` made it public (visible to every
/// key, its training details withheld) or private again (visible to who may read every
/// Datanet it trained on). An adapter without acts is private.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterAct {
    /// Its number within the adapter's acts, from 1.
    pub seq: u64,
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// Who acted (the training Datanet's owner, as the root crate checks).
    pub by: Address,
    /// Public after the act, or private.
    pub public: bool,
}
