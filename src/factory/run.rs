//! Running one job to its end: check the owner's key and grants as they are now, read the
//! training set as the owner, train (resuming from the last checkpoint when there is one),
//! write the adapter, evaluate held-out loss before and after, generate samples with and
//! without the adapter, and record the result. Every step becomes an event; the job ends
//! succeeded, cancelled (resumable) or failed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use provdb_inference::llama::{Llama, LlamaModel};
use provdb_inference::lora::peft::{CONFIG_FILE, WEIGHTS_FILE};
use provdb_inference::lora::{
    AdapterMix, TrainingContributor, TrainingProvenance, adapter_id, peft,
};
use provdb_inference::train::{
    CheckpointPolicy, Control, Evaluation, Example, Trainer, TrainingOutcome,
};
use provdb_query::Caller;
use provdb_storage::{JobStatus, keccak256, record_ids_root};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dataset::{training_set, write_record_ids};
use super::owner::job_caller;
use super::spec::JobId;
use super::spec::StoredSpec;
use crate::db::Db;
use crate::error::{Error, Result};

/// Samples generated side by side at the end of a job.
const SAMPLES: usize = 3;
/// New tokens per sample.
const SAMPLE_TOKENS: usize = 48;

/// Held-out loss and perplexity.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalView {
    /// Mean loss per response token.
    pub loss: f32,
    /// exp(loss).
    pub perplexity: f32,
    /// Tokens scored.
    pub tokens: usize,
}

impl From<Evaluation> for EvalView {
    fn from(e: Evaluation) -> Self {
        Self {
            loss: e.loss,
            perplexity: e.perplexity,
            tokens: e.tokens,
        }
    }
}

/// A prompt with the base model's and the tuned model's continuations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// The prompt.
    pub prompt: String,
    /// The base model's greedy continuation.
    pub base: String,
    /// The tuned model's.
    pub tuned: String,
}

/// What a succeeded job produced.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobResult {
    /// The adapter's id (the hash of its files).
    pub adapter_id: String,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Held-out loss before training (the base model) and after.
    pub before: Option<EvalView>,
    /// After.
    pub after: Option<EvalView>,
    /// Side-by-side generations.
    pub samples: Vec<Sample>,
    /// What the adapter will record of its training when published.
    pub provenance: TrainingProvenance,
}

/// Sees each event of a running job as it is stored.
pub type EventSink<'a> = &'a (dyn Fn(&serde_json::Value) + Sync);

/// Runs job `id` until it ends or `cancel` is set; the status it ended with.
pub(crate) fn run_job(
    db: &Db,
    id: JobId,
    cancel: &AtomicBool,
    on_event: EventSink<'_>,
) -> Result<JobStatus> {
    let job = db.fine_tune_job(id)?;
    let stored: StoredSpec = serde_json::from_str(&job.spec_json)
        .map_err(|e| Error::Internal(format!("job {id} has an unreadable request: {e}")))?;
    db.set_job_status(id, JobStatus::Running, None, None)?;
    let emit = |event: serde_json::Value| -> Result<()> {
        db.job_event(id, event.clone())?;
        on_event(&event);
        Ok(())
    };
    // The owner's key and grants are checked now, at every start and resume, not at creation.
    let outcome = job_caller(db, id, &job, &stored)
        .and_then(|caller| train(db, id, &stored, caller, cancel, &emit));
    let status = match &outcome {
        Ok(Some(_)) => JobStatus::Succeeded,
        Ok(None) => JobStatus::Cancelled,
        Err(_) => JobStatus::Failed,
    };
    on_event(&json!({"type": "status", "status": status.as_str(),
        "error": outcome.as_ref().err().map(ToString::to_string)}));
    match outcome {
        Ok(Some(result)) => {
            let value =
                serde_json::to_value(&result).map_err(|e| Error::Internal(e.to_string()))?;
            db.set_job_status(id, JobStatus::Succeeded, None, Some(&value))?;
            Ok(JobStatus::Succeeded)
        }
        Ok(None) => {
            db.set_job_status(
                id,
                JobStatus::Cancelled,
                Some("cancelled; resume continues from the last checkpoint".into()),
                None,
            )?;
            Ok(JobStatus::Cancelled)
        }
        Err(error) => {
            db.set_job_status(id, JobStatus::Failed, Some(error.to_string()), None)?;
            Ok(JobStatus::Failed)
        }
    }
}

fn train(
    db: &Db,
    id: JobId,
    stored: &StoredSpec,
    caller: Caller,
    cancel: &AtomicBool,
    emit: &dyn Fn(serde_json::Value) -> Result<()>,
) -> Result<Option<JobResult>> {
    let answer_model = db.answer_model()?;
    if answer_model.name != stored.model {
        return Err(Error::Invalid(format!(
            "job {id} trains {}, but this server runs {}",
            stored.model, answer_model.name
        )));
    }
    let model = Arc::clone(&answer_model.model);
    let spec = &stored.spec;
    let set = training_set(db, spec, caller, &model)?;
    let dir = db.job_dir(id);
    write_record_ids(&dir, &set.record_ids)?;
    let mut trainer = Trainer::new(
        Arc::clone(&model),
        spec.hyperparameters.clone(),
        set.examples.clone(),
    )?;
    super::gradients::start(&mut trainer, spec, set.record_ids.len())?;
    let checkpoints = CheckpointPolicy {
        dir: dir.join("checkpoints"),
        every_steps: (trainer.total_steps() / 10).max(1),
    };
    let resumed = trainer.restore(&checkpoints.dir)?;
    let before_path = dir.join("before.json");
    let before: Option<EvalView> = if resumed && before_path.is_file() {
        let bytes = fs_err::read(&before_path).map_err(Error::io(&before_path))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Internal(e.to_string()))?
    } else {
        let before = trainer.evaluate_held_out()?.map(EvalView::from);
        let json = serde_json::to_vec(&before).map_err(|e| Error::Internal(e.to_string()))?;
        fs_err::write(&before_path, json).map_err(Error::io(&before_path))?;
        before
    };
    let (train_examples, held_out_examples) = trainer.example_counts();
    emit(
        json!({"type": "started", "step": trainer.step(), "total_steps": trainer.total_steps(),
               "train_examples": train_examples, "held_out_examples": held_out_examples,
               "copies_left_out": set.copies.len(), "resumed": resumed, "before": before}),
    )?;
    if !set.copies.is_empty() {
        // Which records were left out, and whose text they copy (the first hundred).
        let copies: Vec<_> = set
            .copies
            .iter()
            .take(100)
            .map(|(copy, kept)| json!({"record_id": copy.to_string(), "copy_of": kept.to_string()}))
            .collect();
        emit(json!({"type": "copies_left_out", "count": set.copies.len(), "copies": copies}))?;
    }
    let outcome = trainer.run(Some(&checkpoints), &mut |p| {
        // An event that cannot be stored is not worth stopping a run for; the status is.
        let _ = emit(
            json!({"type": "step", "step": p.step, "total_steps": p.total_steps, "loss": p.loss,
                   "learning_rate": p.learning_rate, "tokens_per_second": p.tokens_per_second,
                   "eta_seconds": p.eta_seconds}),
        );
        if cancel.load(Ordering::Acquire) {
            Control::Cancel
        } else {
            Control::Continue
        }
    })?;
    let (steps, held_out) = match outcome {
        TrainingOutcome::Cancelled { .. } => return Ok(None),
        TrainingOutcome::Finished {
            steps, held_out, ..
        } => (steps, held_out),
    };
    let adapter_dir = dir.join("adapter");
    trainer.save_adapter(&adapter_dir, &stored.model)?;
    let after = held_out.map(EvalView::from);
    db.job_event(
        id,
        json!({"type": "evaluated", "before": before, "after": after}),
    )?;
    let prompts: Vec<Vec<u32>> = sample_prompts(trainer.held_out_examples(), &set.examples);
    let (adapter, samples) = samples(&model, &adapter_dir, &prompts)?;
    let config_bytes =
        serde_json::to_vec(&spec.hyperparameters).map_err(|e| Error::Internal(e.to_string()))?;
    let records_root = record_ids_root(&set.record_ids)
        .map(|r| format!("0x{}", hex::encode(r)))
        .unwrap_or_default();
    let gradients =
        super::gradients::write(&trainer, &adapter_dir, &set.record_ids, &records_root)?;
    if let Some(store) = &gradients {
        db.job_event(id, json!({"type": "gradients", "store": store}))?;
    }
    let provenance = TrainingProvenance {
        job_id: id.to_string(),
        datanet: spec.datanet.clone(),
        records_root,
        records: set.record_ids.len() as u64,
        config_hash: format!("0x{}", hex::encode(keccak256(&config_bytes))),
        share_bps: spec.training_share_bps,
        contributors: set
            .contributors
            .iter()
            .map(|(address, tokens)| TrainingContributor {
                address: address.to_string(),
                tokens: *tokens,
            })
            .collect(),
        attribution: if gradients.is_some() {
            "influence"
        } else {
            "tokens"
        }
        .into(),
        gradients,
    };
    Ok(Some(JobResult {
        adapter_id: adapter,
        steps,
        before,
        after,
        samples,
        provenance,
    }))
}

/// Up to [`SAMPLES`] prompts: the held-out examples' (or the training examples'), a
/// completion's first 16 tokens standing in for a prompt it does not have.
fn sample_prompts(held_out: &[Example], all: &[Example]) -> Vec<Vec<u32>> {
    let source = if held_out.is_empty() { all } else { held_out };
    source
        .iter()
        .take(SAMPLES)
        .map(|e| {
            if e.prompt.is_empty() {
                e.response.iter().take(16).copied().collect()
            } else {
                e.prompt.clone()
            }
        })
        .filter(|p: &Vec<u32>| !p.is_empty())
        .collect()
}

/// The adapter's id and greedy continuations of `prompts` without and with it.
fn samples(
    model: &Arc<LlamaModel>,
    adapter_dir: &Path,
    prompts: &[Vec<u32>],
) -> Result<(String, Vec<Sample>)> {
    let read = |name: &str| {
        let path = adapter_dir.join(name);
        fs_err::read(&path).map_err(Error::io(&path))
    };
    let id = adapter_id(&read(CONFIG_FILE)?, &read(WEIGHTS_FILE)?);
    let adapter = peft::load(adapter_dir, model.config(), id)?;
    let mix = AdapterMix::weighted(vec![(Arc::new(adapter), 1.0)])?;
    let mut out = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let continue_with = |mix: Option<&AdapterMix>| -> Result<String> {
            let mut session = Llama::new(Arc::clone(model));
            if let Some(mix) = mix {
                session.set_adapters(mix.clone());
            }
            let tokens = session.greedy(prompt, SAMPLE_TOKENS)?;
            Ok(model.decode(&tokens)?)
        };
        out.push(Sample {
            prompt: model.decode(prompt)?,
            base: continue_with(None)?,
            tuned: continue_with(Some(&mix))?,
        });
    }
    Ok((id.to_string(), out))
}
