//! A [`Trainer`]'s state read and written from outside the loop: the factors (for checks and
//! diagnostics), loss and gradients without a step, logits of the training forward pass, the
//! adapter folder, and checkpoints (see [`super::checkpoint`] for the format).
//!
//! Invariant: restoring a checkpoint replaces the factors, the AdamW moments and update count
//! and the step together, and only after the whole file has been read and checked, so a
//! refused checkpoint leaves the trainer as it was.

use std::path::{Path, PathBuf};

use super::FactorValues;
use super::checkpoint::{self, Slot, TrainingState};
use super::data::{Batch, Example};
use super::factors::{set_values, values};
use super::optim::AdamW;
use super::trainer::Trainer;
use crate::error::{InferenceError, Result};
use crate::lora::MODULES;

impl Trainer {
    /// Mean loss over the response tokens of `examples` and its gradient for every factor,
    /// accumulated over micro-batches of the config's batch size: what a step computes,
    /// without updating anything (for checks and diagnostics).
    pub fn loss_and_gradients(&self, examples: &[Example]) -> Result<(f32, Vec<FactorValues>)> {
        self.check_examples(examples)?;
        let batches: Vec<Batch> = examples
            .chunks(self.config.batch_size)
            .map(|chunk| Batch::new(&chunk.iter().collect::<Vec<_>>()))
            .collect();
        let tokens = batches.iter().map(|b| b.targets.len()).sum();
        let step = self.gradients(&batches, tokens, None)?;
        Ok((step.loss, self.pair_up(step.sums)))
    }

    fn pair_up(&self, flat: Vec<Vec<f32>>) -> Vec<FactorValues> {
        let mut flat = flat.into_iter();
        self.factors
            .all()
            .iter()
            .map(|factor| FactorValues {
                layer: factor.layer,
                module: MODULES[factor.module],
                a: flat.next().unwrap_or_default(),
                b: flat.next().unwrap_or_default(),
            })
            .collect()
    }

    /// The current factors (`b` rows of `q_proj`/`k_proj` in the base's adjacent-pair
    /// rotary order, as trained).
    pub fn factors(&self) -> Result<Vec<FactorValues>> {
        let flat = self
            .factors
            .variables()
            .map(values)
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| self.compute(e))?;
        Ok(self.pair_up(flat))
    }

    /// Replaces the factors of `module` of `layer` (same layout as [`Trainer::factors`]).
    pub fn set_factor(&mut self, layer: usize, module: &str, a: &[f32], b: &[f32]) -> Result<()> {
        let index = MODULES.iter().position(|m| *m == module);
        let Some(factor) = index.and_then(|m| self.factors.get(layer, m)) else {
            return Err(InferenceError::Invalid(format!(
                "layer {layer} {module} is not trained"
            )));
        };
        if a.len() != factor.a.elem_count() || b.len() != factor.b.elem_count() {
            return Err(InferenceError::Invalid(format!(
                "layer {layer} {module}: {} and {} values given, {:?} expected",
                a.len(),
                b.len(),
                factor.shapes()
            )));
        }
        if !a.iter().chain(b).all(|v| v.is_finite()) {
            return Err(InferenceError::Invalid(format!(
                "layer {layer} {module}: factor values must be finite numbers"
            )));
        }
        set_values(&factor.a, a.to_vec())
            .and_then(|()| set_values(&factor.b, b.to_vec()))
            .map_err(|e| self.compute(e))
    }

    /// Next-token logits after every position of `tokens`, from the training forward pass.
    pub fn logits(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let model = self.model.config();
        if tokens.is_empty() || tokens.len() > model.context_length {
            return Err(InferenceError::Invalid(format!(
                "{} tokens: 1 to the model's context of {} are scored",
                tokens.len(),
                model.context_length
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= model.vocab) {
            return Err(InferenceError::Invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                model.vocab
            )));
        }
        self.forward()
            .logits(tokens)
            .and_then(|l| l.to_vec2::<f32>())
            .map_err(|e| self.compute(e))
    }

    /// Writes the adapter as a PEFT folder (`base_model_name` goes in
    /// `base_model_name_or_path`, e.g. `HuggingFaceTB/SmolLM2-135M-Instruct`).
    pub fn save_adapter(&self, dir: &Path, base_model_name: &str) -> Result<()> {
        let head_dim = self.model.config().head_dim();
        super::export::write_peft(dir, &self.factors, &self.config, head_dim, base_model_name)
    }

    fn slots(&self) -> Vec<Slot> {
        self.factors
            .all()
            .iter()
            .flat_map(|f| {
                let [a, b] = f.shapes();
                [
                    Slot::new(f.layer, f.module, true, a),
                    Slot::new(f.layer, f.module, false, b),
                ]
            })
            .collect()
    }

    /// Writes the full training state to `dir/step-NNNNNNNN/` (older steps removed).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        let values = self
            .factors
            .variables()
            .map(values)
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| self.compute(e))?;
        let variables = values
            .into_iter()
            .zip(&self.optimizer.moments)
            .map(|(v, (m, s))| [v, m.clone(), s.clone()])
            .collect();
        let state = TrainingState {
            step: self.step,
            updates: self.optimizer.updates,
            fingerprint: self.fingerprint,
            config_json: serde_json::to_string(&self.config)
                .map_err(|e| InferenceError::Invalid(e.to_string()))?,
            variables,
        };
        checkpoint::write(dir, &self.slots(), &state)
    }

    /// Restores the newest checkpoint in `dir`, if there is one (returns whether it did). A
    /// checkpoint of another base, dataset or config is refused.
    pub fn restore(&mut self, dir: &Path) -> Result<bool> {
        let Some(folder) = checkpoint::latest(dir)? else {
            return Ok(false);
        };
        let state = checkpoint::read(&folder, &self.slots())?;
        if state.fingerprint != self.fingerprint {
            return Err(InferenceError::Invalid(format!(
                "{}: this checkpoint was written for another base model, dataset or config",
                folder.display()
            )));
        }
        if state.step > self.total_steps() {
            return Err(InferenceError::Corrupt {
                path: folder,
                reason: format!(
                    "step {} beyond the run's {}",
                    state.step,
                    self.total_steps()
                ),
            });
        }
        let variables: Vec<_> = self.factors.variables().cloned().collect();
        let mut moments = Vec::with_capacity(variables.len());
        for (variable, [values, m, v]) in variables.iter().zip(state.variables) {
            set_values(variable, values).map_err(|e| self.compute(e))?;
            moments.push((m, v));
        }
        self.optimizer = AdamW {
            moments,
            updates: state.updates,
        };
        self.step = state.step;
        Ok(true)
    }
}
