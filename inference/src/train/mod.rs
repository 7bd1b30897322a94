//! LoRA fine-tuning of a loaded LLaMA-family base (the training core of the Model Factory),
//! producing PEFT adapters that [`crate::lora`] serves.
//!
//! Paper: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021),
//! <https://arxiv.org/abs/2106.09685>; rsLoRA: Kalajdzievski (2023),
//! <https://arxiv.org/abs/2312.03732>. Reference implementation: Hugging Face PEFT (`LoraLayer`,
//! `get_peft_model`) with the `transformers` Trainer (AdamW, warmup schedules, gradient
//! accumulation, `clip_grad_norm_`).
//!
//! - [`TrainingConfig`]: hyperparameters, validated against the base (bad ones are user errors).
//! - [`Example`]: (prompt tokens, response tokens); the loss covers response tokens only.
//! - [`Trainer`]: a run. Training forward in candle (CPU, f32) over the base's weights
//!   dequantized once and frozen (`base`), LoRA factors as candle variables (`factors`),
//!   the differentiable decoder and masked cross-entropy (`forward`), AdamW and clipping
//!   written here (`optim`), checksummed checkpoints (`checkpoint`), PEFT output (`export`),
//!   factor access and checkpoint save/restore (`state`),
//!   seeded randomness fixed by this crate (`rng`), data split and order (`data`).
//!
//! Invariants: the same base, examples and config give the same adapter bytes; a run resumed
//! from a checkpoint continues exactly as the uninterrupted run; the adapter written loads
//! through [`crate::lora::AdapterStore`] and gives the logits of the training forward pass.

mod base;
mod capture;
mod checkpoint;
mod config;
mod data;
mod export;
mod factors;
mod forward;
mod influence;
mod ops;
mod optim;
mod rng;
mod scoring;
mod state;
mod trainer;

use std::path::PathBuf;

pub use base::BaseProduct;
pub use capture::TrainingGradients;
pub use config::{MAX_BATCH_SIZE, MAX_EPOCHS, MAX_RANK, Schedule, TrainingConfig};
pub use data::Example;
pub use influence::{GradientProjection, MAX_PROJECTION_WIDTH, cosine};
pub use optim::{BETA1, BETA2, EPSILON};
pub use scoring::GradientModel;
pub use trainer::Trainer;

/// What the progress callback sees after every optimiser step.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Optimiser steps done (1 after the first).
    pub step: usize,
    /// Optimiser steps of the whole run.
    pub total_steps: usize,
    /// Mean loss over the response tokens of the step just taken.
    pub loss: f32,
    /// The learning rate that step used.
    pub learning_rate: f64,
    /// Tokens (prompt and response, no padding) trained per second since this `run` began.
    pub tokens_per_second: f64,
    /// Seconds left at the pace so far.
    pub eta_seconds: f64,
}

/// The callback's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this step (writing a checkpoint when a policy is given).
    Cancel,
}

/// Where and how often a run writes checkpoints.
#[derive(Clone, Debug)]
pub struct CheckpointPolicy {
    /// The checkpoint folder (one `step-NNNNNNNN/` inside, the newest).
    pub dir: PathBuf,
    /// Every this many steps (0: only on cancellation and at the end).
    pub every_steps: usize,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainingOutcome {
    /// Every step was taken.
    Finished {
        /// Steps of the run.
        steps: usize,
        /// Loss of the last step taken in this call (`None` when it had nothing left to do).
        last_loss: Option<f32>,
        /// Loss on the held-out examples, when there are any.
        held_out: Option<Evaluation>,
    },
    /// The callback cancelled after step `step`.
    Cancelled {
        /// Steps done.
        step: usize,
    },
}

/// Loss over a set of examples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean `−log p` per response token.
    pub loss: f32,
    /// `exp(loss)`.
    pub perplexity: f32,
    /// Response tokens scored.
    pub tokens: usize,
}

/// One module's factors (or their gradients): `a` is `rank × input`, `b` is `output × rank`,
/// both row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct FactorValues {
    /// The block.
    pub layer: usize,
    /// The module, a PEFT name among [`crate::lora::MODULES`].
    pub module: &'static str,
    /// `lora_A`.
    pub a: Vec<f32>,
    /// `lora_B` (rows of `q_proj`/`k_proj` in the base's adjacent-pair rotary order).
    pub b: Vec<f32>,
}
