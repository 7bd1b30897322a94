//! The Model Factory: LoRA fine-tuning jobs on Datanet records, in the style of OpenAI's
//! fine-tuning API (queued → running → succeeded | failed | cancelled, with events), over the
//! training core of `provdb_inference::train`.
//!
//! A job names a Datanet the caller may read (optionally a SQL query over it), a format and
//! hyperparameters. Its training set is read as the caller, so a private Datanet without a
//! grant cannot be trained on. Jobs and their events live in storage; a job's checkpoints and
//! adapter live in `DIR/jobs/<id>/`. Publishing adds the adapter to the adapter store with its
//! training provenance (Merkle root of the record ids, their contributors' token counts, the
//! share of the adapter's price in every answer they earn), from where answers made with it pay them and
//! chain sync registers it.
//!
//! Invariants: a job's state changes only through this module, each change stored with an
//! event; a job found `running` when the database opens (its process died) is `cancelled` and
//! resumes from its last checkpoint; a job trains exactly on the stored text of records its
//! owner could read when it ran (its key, if it came with one, not revoked: `owner`); a
//! published adapter is seen only by callers who may read its training Datanet, unless that
//! Datanet's owner made it public, a recorded act (`visibility`).

mod dataset;
mod gradients;
mod owner;
mod run;
mod runner;
mod spec;
mod visibility;

use std::path::PathBuf;

use provdb_inference::lora::AdapterInfo;
use provdb_query::Caller;
use provdb_storage::{Address, JobEvent, JobRecord, JobStatus};
use serde_json::{Value, json};

pub use dataset::{MAX_TRAINING_RECORDS, TrainingSet};
pub use run::{EvalView, EventSink, JobResult, Sample};
pub use runner::JobRunner;
pub use spec::{
    DEFAULT_TRAINING_SHARE_BPS, DataFormat, FineTuneSpec, JobId, MAX_INFLUENCE_RECORDS,
    MAX_TRAINING_SHARE_BPS, StoredSpec, TrainingAttribution,
};
pub use visibility::AdapterAccess;

use crate::access::Principal;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

/// A job as the API shows it.
pub fn job_view(job: &JobRecord) -> Value {
    let spec: Value = serde_json::from_str(&job.spec_json).unwrap_or(Value::Null);
    let result: Value = job
        .result_json
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": JobId(job.job_id).to_string(),
        "object": "fine_tuning.job",
        "owner": job.owner.to_string(),
        "status": job.status.as_str(),
        "created_at": job.created_at_ms,
        "updated_at": job.updated_at_ms,
        "model": spec["model"],
        "datanet": spec["spec"]["datanet"],
        "hyperparameters": spec["spec"]["hyperparameters"],
        "result": result,
        "error": job.error,
    })
}

impl Db {
    /// The folder of a job's checkpoints and adapter.
    pub fn job_dir(&self, id: JobId) -> PathBuf {
        self.dir().join("jobs").join(hex::encode(id.0))
    }

    /// Creates a queued job training the loaded generator on `spec`'s data as `caller` (whose
    /// address owns the job), for the embedding application or the local operator. Everything
    /// checkable now is checked now: the training share, the Datanet is readable, the
    /// hyperparameters fit the model, the training set is not empty.
    pub fn create_fine_tune_job(&self, spec: FineTuneSpec, caller: Caller) -> Result<JobRecord> {
        self.create_job(spec, caller, None)
    }

    /// [`Db::create_fine_tune_job`] for the holder of an API key: the job runs and publishes
    /// only while that key is not revoked, with the key's access when it starts.
    pub fn create_fine_tune_job_for_key(
        &self,
        spec: FineTuneSpec,
        principal: &Principal,
    ) -> Result<JobRecord> {
        self.create_job(spec, principal.caller(), Some(principal.key_id.clone()))
    }

    fn create_job(
        &self,
        spec: FineTuneSpec,
        caller: Caller,
        key_id: Option<String>,
    ) -> Result<JobRecord> {
        let owner = caller
            .who()
            .ok_or_else(|| Error::Invalid("a fine-tuning job needs an owner address".into()))?;
        spec.validate()?;
        let model = self.answer_model()?;
        if let Some(name) = &spec.model
            && *name != model.name
        {
            return Err(Error::Invalid(format!(
                "model '{name}' is not served here; this database trains '{}'",
                model.name
            )));
        }
        spec.hyperparameters
            .validate(model.model.config())
            .map_err(Error::from)?;
        let set = dataset::training_set(self, &spec, caller, &model.model)?;
        if set.examples.is_empty() {
            return Err(Error::Invalid(format!(
                "the query over datanet '{}' gave no training examples",
                spec.datanet
            )));
        }
        let stored = StoredSpec {
            model: model.name.clone(),
            as_admin: caller.is_admin(),
            key_id,
            spec,
        };
        let now = now_ms();
        let job = JobRecord {
            job_id: rand::random(),
            owner,
            created_at_ms: now,
            updated_at_ms: now,
            status: JobStatus::Queued,
            spec_json: serde_json::to_string(&stored)
                .map_err(|e| Error::Internal(format!("cannot store a job: {e}")))?,
            result_json: None,
            error: None,
        };
        self.store.put_job(&job)?;
        self.job_event(
            JobId(job.job_id),
            json!({"type": "status", "status": "queued", "examples": set.examples.len(),
                   "records": set.record_ids.len(),
                   "tokens": set.contributors.values().sum::<u64>()}),
        )?;
        Ok(job)
    }

    /// One job.
    pub fn fine_tune_job(&self, id: JobId) -> Result<JobRecord> {
        self.store
            .job(&id.0)?
            .ok_or_else(|| Error::Invalid(format!("unknown fine-tuning job {id}")))
    }

    /// Every job, oldest first.
    pub fn fine_tune_jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(self.store.jobs()?)
    }

    /// A job's events after number `after`.
    pub fn fine_tune_events(&self, id: JobId, after: u64, limit: usize) -> Result<Vec<JobEvent>> {
        self.fine_tune_job(id)?;
        Ok(self.store.job_events(&id.0, after, limit)?)
    }

    pub(crate) fn job_event(&self, id: JobId, event: Value) -> Result<u64> {
        Ok(self
            .store
            .append_job_event(&id.0, now_ms(), event.to_string())?)
    }

    /// Moves a job to `status` (with an event saying so).
    pub(crate) fn set_job_status(
        &self,
        id: JobId,
        status: JobStatus,
        error: Option<String>,
        result: Option<&Value>,
    ) -> Result<JobRecord> {
        let mut job = self.fine_tune_job(id)?;
        job.status = status;
        job.updated_at_ms = now_ms();
        job.error = error.clone();
        if let Some(result) = result {
            job.result_json = Some(result.to_string());
        }
        self.store.put_job(&job)?;
        let mut event = json!({"type": "status", "status": status.as_str()});
        if let Some(error) = error {
            event["error"] = json!(error);
        }
        self.job_event(id, event)?;
        Ok(job)
    }

    /// Runs a queued job here, in the foreground, until it ends or `cancel` is set (the CLI; a
    /// server runs jobs on a [`JobRunner`]); `on_event` sees each event as it is stored.
    pub fn run_fine_tune_job(
        &self,
        id: JobId,
        cancel: &std::sync::atomic::AtomicBool,
        on_event: EventSink<'_>,
    ) -> Result<JobStatus> {
        let job = self.fine_tune_job(id)?;
        if job.status != JobStatus::Queued {
            return Err(Error::Invalid(format!(
                "job {id} is {}, not queued",
                job.status.as_str()
            )));
        }
        run::run_job(self, id, cancel, on_event)
    }

    /// Queues a cancelled or failed job again; it resumes from its last checkpoint.
    pub fn resume_fine_tune_job(&self, id: JobId) -> Result<JobRecord> {
        let job = self.fine_tune_job(id)?;
        if !matches!(job.status, JobStatus::Cancelled | JobStatus::Failed) {
            return Err(Error::Invalid(format!(
                "job {id} is {}; only a cancelled or failed job resumes",
                job.status.as_str()
            )));
        }
        self.set_job_status(id, JobStatus::Queued, None, None)
    }

    /// Marks jobs left `running` by a process that died as `cancelled` (resumable); returns them.
    pub fn recover_fine_tune_jobs(&self) -> Result<Vec<JobId>> {
        let mut recovered = Vec::new();
        for job in self.store.jobs()? {
            if job.status == JobStatus::Running {
                let id = JobId(job.job_id);
                self.set_job_status(
                    id,
                    JobStatus::Cancelled,
                    Some("interrupted: the process stopped; resume continues from the last checkpoint".into()),
                    None,
                )?;
                recovered.push(id);
            }
        }
        Ok(recovered)
    }

    /// Adds a succeeded job's adapter to the adapter store, owned by `owner`, with its training
    /// provenance; answers can then use it and chain sync registers it. The job's owner must
    /// still hold its key and may still read the Datanet. The adapter is private (seen by who
    /// may read its Datanet) until the Datanet's owner makes it public
    /// ([`Db::set_adapter_public`]).
    pub fn publish_fine_tune_job(&self, id: JobId, owner: Address) -> Result<AdapterInfo> {
        let job = self.fine_tune_job(id)?;
        if job.status != JobStatus::Succeeded {
            return Err(Error::Invalid(format!(
                "job {id} is {}; only a succeeded job publishes",
                job.status.as_str()
            )));
        }
        let stored: StoredSpec = serde_json::from_str(&job.spec_json)
            .map_err(|e| Error::Internal(format!("job {id} has an unreadable request: {e}")))?;
        owner::job_caller(self, id, &job, &stored)?;
        let model = self.answer_model()?;
        let result: run::JobResult =
            serde_json::from_str(job.result_json.as_deref().unwrap_or("null"))
                .map_err(|e| Error::Internal(format!("job {id} has no readable result: {e}")))?;
        let record_ids = dataset::read_record_ids(&self.job_dir(id))?;
        let info = self.adapter_store().add_trained(
            &self.job_dir(id).join("adapter"),
            Some(&owner.to_string()),
            &model.model,
            (&result.provenance, &record_ids),
        )?;
        self.job_event(id, json!({"type": "published", "adapter": info.id}))?;
        Ok(info)
    }
}
