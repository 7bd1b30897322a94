//! Training checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! Layout: `DIR/step-NNNNNNNN/` holds `state.safetensors` (for every factor in order, `lora_A`
//! and `lora_B` with their AdamW `exp_avg` and `exp_avg_sq`; in the header's metadata the
//! optimiser step, AdamW's update count, the run's fingerprint and its config as JSON) and
//! `state.keccak256` (hex keccak256 of the state file, checked on every read). There is no
//! generator state to save: the split and each epoch's order are re-derived from the seed.
//!
//! Invariants: a step directory is complete or absent (written as `.step-NNNNNNNN.partial`,
//! synced, then renamed into place); only the newest is kept; a state file whose checksum
//! does not match is refused as corrupt, never half-used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use keccak_asm::Keccak256;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{InferenceError, Result};
use crate::lora::MODULES;

const STATE_FILE: &str = "state.safetensors";
const CHECKSUM_FILE: &str = "state.keccak256";
const FORMAT: &str = "provdb-lora-training-state-1";

/// Where one variable's values and moments sit in the state.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// `{layer}.{module}.lora_A` or `….lora_B`.
    pub(crate) name: String,
    pub(crate) shape: (usize, usize),
}

impl Slot {
    pub(crate) fn new(layer: usize, module: usize, is_a: bool, shape: (usize, usize)) -> Self {
        let factor = if is_a { "lora_A" } else { "lora_B" };
        Self {
            name: format!("{layer}.{}.{factor}", MODULES[module]),
            shape,
        }
    }
}

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrainingState {
    /// Optimiser steps done.
    pub(crate) step: usize,
    /// AdamW's update count.
    pub(crate) updates: u64,
    /// keccak256 of the base, the data and the config (see the trainer).
    pub(crate) fingerprint: [u8; 32],
    /// The config as JSON (for people reading the file; the fingerprint is what is checked).
    pub(crate) config_json: String,
    /// Per variable, in slot order: values, `exp_avg`, `exp_avg_sq`.
    pub(crate) variables: Vec<[Vec<f32>; 3]>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> InferenceError + '_ {
    move |source| InferenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `state` as `dir/step-NNNNNNNN/` and removes older steps; returns the new folder.
pub(crate) fn write(dir: &Path, slots: &[Slot], state: &TrainingState) -> Result<PathBuf> {
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    let name = format!("step-{:08}", state.step);
    let partial = dir.join(format!(".{name}.partial"));
    if partial.exists() {
        fs_err::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    fs_err::create_dir(&partial).map_err(io(&partial))?;
    let suffixes = ["", ".exp_avg", ".exp_avg_sq"];
    let mut tensors = Vec::new();
    for (slot, values) in slots.iter().zip(&state.variables) {
        for (suffix, values) in suffixes.iter().zip(values) {
            tensors.push((
                format!("{}{suffix}", slot.name),
                slot.shape,
                f32_bytes(values),
            ));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, (rows, cols), bytes)| {
            TensorView::new(Dtype::F32, vec![*rows, *cols], bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| corrupt(dir, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("step", state.step.to_string()),
        ("updates", state.updates.to_string()),
        ("fingerprint", hex::encode(state.fingerprint)),
        ("config", state.config_json.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| corrupt(dir, format!("cannot encode the training state: {e}")))?;
    let state_path = partial.join(STATE_FILE);
    write_synced(&state_path, &bytes)?;
    let checksum = hex::encode(Keccak256::digest(&bytes));
    write_synced(&partial.join(CHECKSUM_FILE), checksum.as_bytes())?;
    let done = dir.join(&name);
    if done.exists() {
        fs_err::remove_dir_all(&done).map_err(io(&done))?;
    }
    fs_err::rename(&partial, &done).map_err(io(&done))?;
    fs_err::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    for (_, older) in steps(dir)?.into_iter().filter(|(s, _)| *s < state.step) {
        fs_err::remove_dir_all(&older).map_err(io(&older))?;
    }
    Ok(done)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs_err::File::create(path).map_err(io(path))?;
    std::io::Write::write_all(&mut file, bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The complete step folders of `dir`, `(step, path)`, oldest first.
fn steps(dir: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let step = name
            .to_str()
            .and_then(|n| n.strip_prefix("step-"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(step) = step {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The newest checkpoint folder in `dir`, if any.
pub(crate) fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(steps(dir)?.pop().map(|(_, path)| path))
}

/// Reads and checks the checkpoint in `folder` against the expected `slots`.
pub(crate) fn read(folder: &Path, slots: &[Slot]) -> Result<TrainingState> {
    let state_path = folder.join(STATE_FILE);
    let checksum_path = folder.join(CHECKSUM_FILE);
    let bytes = fs_err::read(&state_path).map_err(io(&state_path))?;
    let expected = fs_err::read_to_string(&checksum_path).map_err(io(&checksum_path))?;
    if hex::encode(Keccak256::digest(&bytes)) != expected.trim() {
        return Err(corrupt(
            &state_path,
            format!("keccak256 differs from {CHECKSUM_FILE}"),
        ));
    }
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| corrupt(&state_path, format!("header: {e}")))?;
    let tensors =
        SafeTensors::deserialize(&bytes).map_err(|e| corrupt(&state_path, e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| {
        metadata
            .get(key)
            .cloned()
            .ok_or_else(|| corrupt(&state_path, format!("no '{key}' in the metadata")))
    };
    if field("format")? != FORMAT {
        return Err(corrupt(&state_path, "not a provdb LoRA training state"));
    }
    let number = |key: &str| {
        field(key)?
            .parse::<u64>()
            .map_err(|_| corrupt(&state_path, format!("'{key}' is not a number")))
    };
    let mut fingerprint = [0u8; 32];
    hex::decode_to_slice(field("fingerprint")?, &mut fingerprint)
        .map_err(|_| corrupt(&state_path, "the fingerprint is not 32 hex bytes"))?;
    let mut variables = Vec::with_capacity(slots.len());
    for slot in slots {
        let read_one = |suffix: &str| -> Result<Vec<f32>> {
            let name = format!("{}{suffix}", slot.name);
            let view = tensors.tensor(&name).map_err(|_| {
                InferenceError::Invalid(format!(
                    "{}: the checkpoint has no tensor '{name}' (made for other targets?)",
                    state_path.display()
                ))
            })?;
            if view.dtype() != Dtype::F32 || view.shape() != [slot.shape.0, slot.shape.1] {
                return Err(InferenceError::Invalid(format!(
                    "{}: tensor '{name}' is {:?} {:?}, expected F32 {:?} (another rank or base?)",
                    state_path.display(),
                    view.dtype(),
                    view.shape(),
                    slot.shape
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        variables.push([
            read_one("")?,
            read_one(".exp_avg")?,
            read_one(".exp_avg_sq")?,
        ]);
    }
    Ok(TrainingState {
        step: number("step")? as usize,
        updates: number("updates")?,
        fingerprint,
        config_json: field("config")?,
        variables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> TrainingState {
        TrainingState {
            step,
            updates: step as u64,
            fingerprint: [7; 32],
            config_json: "{}".into(),
            variables: vec![[vec![1.0, 2.0], vec![0.5, 0.25], vec![0.0, 1e-9]]],
        }
    }

    #[test]
    fn a_checkpoint_round_trips_keeps_only_the_newest_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let slots = [Slot::new(0, 1, true, (1, 2))];
        write(dir.path(), &slots, &state(3)).unwrap();
        let folder = write(dir.path(), &slots, &state(5)).unwrap();
        assert_eq!(latest(dir.path()).unwrap(), Some(folder.clone()));
        assert_eq!(steps(dir.path()).unwrap().len(), 1, "older steps removed");
        assert_eq!(read(&folder, &slots).unwrap(), state(5));
        let path = folder.join(STATE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let error = read(&folder, &slots).unwrap_err();
        assert!(matches!(error, InferenceError::Corrupt { .. }), "{error}");
        assert!(!error.is_user_error());
    }
}
