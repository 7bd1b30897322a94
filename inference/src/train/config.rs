//! [`TrainingConfig`]: every hyperparameter of a LoRA fine-tuning run, with PEFT's and Hugging
//! Face's meanings, and its validation against the base model. Invariant: a config that passed
//! [`TrainingConfig::validate`] trains without a hyperparameter-caused failure later; every
//! refusal is an [`InferenceError::Invalid`] (a user error) that names the field.

use serde::{Deserialize, Serialize};

use crate::error::{InferenceError, Result};
use crate::llama::LlamaConfig;
use crate::lora::MODULES;

/// Largest rank accepted (a limit, as on everything: memory grows with it).
pub const MAX_RANK: usize = 1024;
/// Largest batch (examples per micro-batch) accepted.
pub const MAX_BATCH_SIZE: usize = 1024;
/// Largest number of epochs accepted.
pub const MAX_EPOCHS: usize = 10_000;

/// How the learning rate moves after warmup (Hugging Face's `get_*_schedule_with_warmup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Stays at the peak.
    Constant,
    /// Falls linearly to zero at the last step.
    Linear,
    /// Falls along half a cosine to zero at the last step.
    Cosine,
}

/// The hyperparameters of a run. Two runs with equal configs, base and data give the same
/// adapter bytes. As JSON, missing fields take their [`Default`] values and unknown fields are
/// refused (a misspelt hyperparameter is not silently ignored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// LoRA rank `r` of every factor.
    pub rank: usize,
    /// `lora_alpha`: the delta is scaled by `alpha / r` (or `alpha / √r` with rsLoRA).
    pub alpha: f32,
    /// rsLoRA scaling (`alpha / √r`).
    pub use_rslora: bool,
    /// Targeted linear layers of every block, PEFT names among [`MODULES`].
    pub targets: Vec<String>,
    /// Peak learning rate of AdamW.
    pub learning_rate: f64,
    /// Optimiser steps of linear warmup from zero to the peak.
    pub warmup_steps: usize,
    /// The decay after warmup.
    pub schedule: Schedule,
    /// Passes over the training examples.
    pub epochs: usize,
    /// Examples per micro-batch (padded to the longest).
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accumulation: usize,
    /// Longest example in tokens, prompt and response together; longer ones are refused.
    pub max_length: usize,
    /// Global gradient-norm clipping threshold; `None` turns clipping off.
    pub clip_norm: Option<f32>,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Seed of the initial factors, the held-out split and the example order.
    pub seed: u64,
    /// Fraction of the examples held out for evaluation, in `[0, 1)`.
    pub held_out_fraction: f32,
}

impl Default for TrainingConfig {
    /// Rank 8, alpha 16 on the attention projections; AdamW at 2e-4 with 10 warmup steps and
    /// cosine decay; one epoch of batches of 4; clipping at 1; a tenth held out.
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            use_rslora: false,
            targets: ["q_proj", "k_proj", "v_proj", "o_proj"]
                .map(String::from)
                .to_vec(),
            learning_rate: 2e-4,
            warmup_steps: 10,
            schedule: Schedule::Cosine,
            epochs: 1,
            batch_size: 4,
            grad_accumulation: 1,
            max_length: 512,
            clip_norm: Some(1.0),
            weight_decay: 0.0,
            seed: 0,
            held_out_fraction: 0.1,
        }
    }
}

fn invalid(message: String) -> InferenceError {
    InferenceError::Invalid(message)
}

impl TrainingConfig {
    /// The scale of every delta: `alpha / r`, or `alpha / √r` with rsLoRA (PEFT's rule).
    pub fn scale(&self) -> f32 {
        if self.use_rslora {
            self.alpha / (self.rank as f32).sqrt()
        } else {
            self.alpha / self.rank as f32
        }
    }

    /// Which of [`MODULES`] are targeted, by index (call after [`Self::validate`]).
    pub(crate) fn targeted(&self) -> [bool; 7] {
        MODULES.map(|m| self.targets.iter().any(|t| t == m))
    }

    /// Checks every field, and the lengths against the base model's context.
    pub fn validate(&self, model: &LlamaConfig) -> Result<()> {
        if self.rank == 0 || self.rank > MAX_RANK {
            return Err(invalid(format!(
                "rank {} is out of range (1 to {MAX_RANK})",
                self.rank
            )));
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(invalid(format!(
                "alpha {} must be a positive number",
                self.alpha
            )));
        }
        if self.targets.is_empty() {
            return Err(invalid(format!(
                "no target modules; choose among {}",
                MODULES.join(", ")
            )));
        }
        for (i, target) in self.targets.iter().enumerate() {
            if !MODULES.contains(&target.as_str()) {
                return Err(invalid(format!(
                    "unknown target module '{target}'; choose among {}",
                    MODULES.join(", ")
                )));
            }
            if self.targets[..i].contains(target) {
                return Err(invalid(format!("target module '{target}' is named twice")));
            }
        }
        if !self.learning_rate.is_finite() || self.learning_rate <= 0.0 {
            return Err(invalid(format!(
                "learning rate {} must be a positive number",
                self.learning_rate
            )));
        }
        let counts = [
            ("epochs", self.epochs, MAX_EPOCHS),
            ("batch size", self.batch_size, MAX_BATCH_SIZE),
            (
                "gradient accumulation",
                self.grad_accumulation,
                MAX_BATCH_SIZE,
            ),
        ];
        for (name, value, max) in counts {
            if value == 0 || value > max {
                return Err(invalid(format!(
                    "{name} {value} is out of range (1 to {max})"
                )));
            }
        }
        if self.max_length < 2 || self.max_length > model.context_length {
            return Err(invalid(format!(
                "max length {} is out of range (2 to the model's context of {})",
                self.max_length, model.context_length
            )));
        }
        if let Some(clip) = self.clip_norm
            && (!clip.is_finite() || clip <= 0.0)
        {
            return Err(invalid(format!(
                "clip norm {clip} must be a positive number (or off)"
            )));
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(invalid(format!(
                "weight decay {} must be a number at least 0",
                self.weight_decay
            )));
        }
        if !(0.0..1.0).contains(&self.held_out_fraction) {
            return Err(invalid(format!(
                "held-out fraction {} must be in [0, 1)",
                self.held_out_fraction
            )));
        }
        Ok(())
    }

    /// Learning rate of optimiser step `step` (0-based) of `total`: Hugging Face's schedules,
    /// `step / warmup` during warmup, then constant, linear or cosine decay to zero at `total`.
    pub fn learning_rate_at(&self, step: usize, total: usize) -> f64 {
        let peak = self.learning_rate;
        if step < self.warmup_steps {
            return peak * step as f64 / self.warmup_steps as f64;
        }
        let decay_steps = total.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / decay_steps).min(1.0);
        match self.schedule {
            Schedule::Constant => peak,
            Schedule::Linear => peak * (1.0 - progress),
            Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_warm_up_then_decay_to_zero() {
        let mut config = TrainingConfig {
            learning_rate: 1.0,
            warmup_steps: 4,
            ..TrainingConfig::default()
        };
        assert_eq!(config.learning_rate_at(0, 14), 0.0);
        assert_eq!(config.learning_rate_at(2, 14), 0.5);
        assert_eq!(config.learning_rate_at(4, 14), 1.0);
        assert!(
            (config.learning_rate_at(9, 14) - 0.5).abs() < 1e-12,
            "cosine midpoint"
        );
        config.schedule = Schedule::Linear;
        assert!((config.learning_rate_at(9, 14) - 0.5).abs() < 1e-12);
        assert!(config.learning_rate_at(13, 14) > 0.0);
        assert_eq!(config.learning_rate_at(14, 14), 0.0);
        config.schedule = Schedule::Constant;
        assert_eq!(config.learning_rate_at(13, 14), 1.0);
    }

    #[test]
    fn json_fills_defaults_and_refuses_unknown_fields() {
        let config: TrainingConfig =
            serde_json::from_str(r#"{"rank": 16, "schedule": "linear"}"#).unwrap();
        assert_eq!((config.rank, config.schedule), (16, Schedule::Linear));
        assert_eq!(config.alpha, TrainingConfig::default().alpha);
        assert!(serde_json::from_str::<TrainingConfig>(r#"{"rnak": 16}"#).is_err());
    }

    #[test]
    fn the_scale_follows_peft() {
        let mut config = TrainingConfig {
            rank: 4,
            alpha: 8.0,
            ..TrainingConfig::default()
        };
        assert_eq!(config.scale(), 2.0);
        config.use_rslora = true;
        assert_eq!(config.scale(), 4.0);
    }
}
