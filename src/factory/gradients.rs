//! A job's gradient store (influence attribution): asked of the trainer before the run, written
//! beside the adapter after it, every training record's projected gradient under its record id
//! (`provdb_inference::lora::GradientStore`), with what it cost.
//!
//! Invariants: only with `training_attribution: influence`; a training set over
//! [`MAX_INFLUENCE_RECORDS`] records is refused before training, naming the fallback; the
//! store's header names the training set's record-id Merkle root, and its keccak goes into the
//! adapter's provenance, so the store published is the store trained.

use std::path::Path;
use std::time::Instant;

use provdb_inference::lora::gradients::METHOD;
use provdb_inference::lora::{GRADIENTS_FILE, GradientHeader, GradientStore, GradientStoreInfo};
use provdb_inference::train::{GradientProjection, Trainer};
use provdb_storage::{RecordId, keccak256};

use super::spec::{FineTuneSpec, MAX_INFLUENCE_RECORDS, TrainingAttribution};
use crate::error::{Error, Result};

/// Asks `trainer` to record gradients when `spec` pays by influence.
pub(super) fn start(trainer: &mut Trainer, spec: &FineTuneSpec, records: usize) -> Result<()> {
    if spec.training_attribution != TrainingAttribution::Influence {
        return Ok(());
    }
    if records > MAX_INFLUENCE_RECORDS {
        return Err(Error::Invalid(format!(
            "{records} training records: influence attribution keeps a gradient per record, \
             for at most {MAX_INFLUENCE_RECORDS}; train on fewer records or set \
             training_attribution to tokens"
        )));
    }
    trainer.capture_gradients(GradientProjection {
        seed: spec.hyperparameters.seed,
        width: spec.influence_projection_width,
    })?;
    Ok(())
}

/// Writes the store of `trainer`'s recorded gradients into `adapter_dir` (None when none were
/// asked for); `record_ids` are the training set's, `records_root` their Merkle root.
pub(super) fn write(
    trainer: &Trainer,
    adapter_dir: &Path,
    record_ids: &[RecordId],
    records_root: &str,
) -> Result<Option<GradientStoreInfo>> {
    let started = Instant::now();
    let Some(gradients) = trainer.training_gradients()? else {
        return Ok(None);
    };
    let ids = gradients
        .example_indices
        .iter()
        .map(|&i| {
            record_ids
                .get(i)
                .map(|id| id.0)
                .ok_or_else(|| Error::Internal(format!("training example {i} has no record id")))
        })
        .collect::<Result<Vec<_>>>()?;
    let store = GradientStore {
        header: GradientHeader {
            method: METHOD.into(),
            projection: gradients.projection,
            dim: gradients.dim,
            rows: ids.len(),
            records_root: records_root.to_string(),
        },
        record_ids: ids,
        tokens: gradients
            .loss_tokens
            .iter()
            .map(|&t| u32::try_from(t).unwrap_or(u32::MAX))
            .collect(),
        values: gradients.rows.concat(),
    };
    let bytes = store.to_bytes()?;
    let path = adapter_dir.join(GRADIENTS_FILE);
    fs_err::write(&path, &bytes).map_err(Error::io(&path))?;
    let spent = gradients.spent + started.elapsed();
    Ok(Some(GradientStoreInfo {
        file_keccak: format!("0x{}", hex::encode(keccak256(&bytes))),
        bytes: bytes.len() as u64,
        rows: store.header.rows as u64,
        dim: store.header.dim as u64,
        projection_width: gradients.projection.width as u64,
        milliseconds: u64::try_from(spent.as_millis()).unwrap_or(u64::MAX),
    }))
}
