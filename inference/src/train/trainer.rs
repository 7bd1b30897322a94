//! [`Trainer`]: one LoRA fine-tuning run over a loaded base model — the loop, progress and
//! cancellation, checkpoints, evaluation and the adapter written at the end.
//!
//! A step takes its micro-batches from the plan, runs forward and backward on each (the loss
//! of the step is the mean over all its response tokens, so accumulation equals one large
//! batch), clips the summed gradients by global norm, and updates every factor with AdamW at
//! the scheduled learning rate. Invariants: the state after step `s` is a function of the
//! base, the examples, the config and `s` only (no clock, no unseeded randomness, every
//! reduction in a fixed order), so a run restored from a checkpoint continues bit for bit as
//! the uninterrupted run; a checkpoint is only restored into a trainer whose fingerprint
//! (base, data, config) matches.

use std::sync::Arc;
use std::time::Instant;

use keccak_asm::{Digest, Keccak256};

use super::base::{BaseProduct, FrozenBase};
use super::capture::Capture;
use super::config::TrainingConfig;
use super::data::{Batch, Example, Plan, Split, split, validate_examples};
use super::factors::{LoraFactors, set_values, values};
use super::forward::Forward;
use super::influence::{GradientProjection, Probes};
use super::optim::{self, AdamW};
use super::{CheckpointPolicy, Control, Evaluation, Progress, TrainingOutcome};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaModel;

/// A LoRA fine-tuning run. Create it with [`Trainer::new`], optionally [`Trainer::restore`] a
/// checkpoint, then [`Trainer::run`]; write the result with [`Trainer::save_adapter`].
pub struct Trainer {
    pub(super) model: Arc<LlamaModel>,
    pub(super) base: FrozenBase,
    pub(super) config: TrainingConfig,
    pub(super) train: Vec<Example>,
    /// The input position of each training example.
    pub(super) train_indices: Vec<usize>,
    pub(super) held_out: Vec<Example>,
    pub(super) plan: Plan,
    pub(super) factors: LoraFactors,
    pub(super) optimizer: AdamW,
    /// Optimiser steps done.
    pub(super) step: usize,
    pub(super) fingerprint: [u8; 32],
    pub(super) product: BaseProduct,
    /// Per-example gradients recorded in the last epoch, when asked for.
    pub(super) capture: Option<Capture>,
}

/// What one step's backward passes give.
pub(super) struct StepGradients {
    /// The step's mean loss.
    pub(super) loss: f32,
    /// The gradient of every variable.
    pub(super) sums: Vec<Vec<f32>>,
    /// When probed, every example's projected gradient, per micro-batch and row.
    pub(super) per_example: Vec<Vec<Vec<f32>>>,
    /// Time spent projecting them.
    pub(super) projecting: std::time::Duration,
}

/// One step's figures.
struct StepReport {
    loss: f32,
    learning_rate: f64,
    tokens: usize,
}

impl Trainer {
    /// Checks the config and the examples (user errors), splits off the held-out examples,
    /// dequantizes the base and draws the initial factors from the seed.
    pub fn new(
        model: Arc<LlamaModel>,
        config: TrainingConfig,
        examples: Vec<Example>,
    ) -> Result<Self> {
        Self::with_base_product(model, config, examples, BaseProduct::default())
    }

    /// [`Trainer::new`] with the frozen matrices kept and multiplied as `product` says.
    pub fn with_base_product(
        model: Arc<LlamaModel>,
        config: TrainingConfig,
        examples: Vec<Example>,
        product: BaseProduct,
    ) -> Result<Self> {
        let model_config = model.config();
        config.validate(model_config)?;
        validate_examples(
            &examples,
            &config,
            model_config.context_length,
            model_config.vocab,
        )?;
        let fingerprint = fingerprint(&model, &config, &examples)?;
        let Split {
            train,
            held_out,
            train_indices,
        } = split(examples, &config)?;
        let plan = Plan::new(train.len(), &config);
        let (base, factors) = {
            let compute = compute_error(&model);
            (
                FrozenBase::new(&model, product).map_err(&compute)?,
                LoraFactors::init(model_config, &config).map_err(&compute)?,
            )
        };
        let optimizer = AdamW::new(factors.variables().map(|v| v.elem_count()));
        Ok(Self {
            model,
            base,
            config,
            train,
            train_indices,
            held_out,
            plan,
            factors,
            optimizer,
            step: 0,
            fingerprint,
            product,
            capture: None,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &TrainingConfig {
        &self.config
    }

    /// Optimiser steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Optimiser steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.plan.total_steps()
    }

    /// `(training, held-out)` example counts.
    pub fn example_counts(&self) -> (usize, usize) {
        (self.train.len(), self.held_out.len())
    }

    /// Chooses how the frozen matrices are kept and multiplied (the default dequantizes them
    /// once; [`BaseProduct::AsStored`] keeps no copy and multiplies with the inference kernels,
    /// 8-bit activations included). Rebuilds the base when its representation changes; a
    /// checkpoint continues bit for bit only under the product it was written with.
    pub fn set_base_product(&mut self, product: BaseProduct) -> Result<()> {
        if (product == BaseProduct::AsStored) != self.base.is_stored() {
            self.base = FrozenBase::new(&self.model, product).map_err(|e| self.compute(e))?;
        }
        self.product = product;
        Ok(())
    }

    pub(super) fn forward(&self) -> Forward<'_> {
        Forward {
            config: self.model.config(),
            base: &self.base,
            factors: &self.factors,
            product: self.product,
            probes: None,
        }
    }

    pub(super) fn compute(&self, error: candle_core::Error) -> InferenceError {
        compute_error(&self.model)(error)
    }

    /// Trains until the last step or until `on_progress` (called after every step) returns
    /// [`Control::Cancel`]. With a policy, a checkpoint is written every `every_steps` steps,
    /// on cancellation and at the end. Finishing evaluates the held-out examples.
    pub fn run(
        &mut self,
        checkpoints: Option<&CheckpointPolicy>,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<TrainingOutcome> {
        let started = Instant::now();
        let (first_step, total) = (self.step, self.total_steps());
        let mut tokens = 0usize;
        let mut last_loss = None;
        while self.step < total {
            let report = self.train_step()?;
            tokens += report.tokens;
            last_loss = Some(report.loss);
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            let steps_here = (self.step - first_step) as f64;
            let mut saved = false;
            if let Some(policy) = checkpoints
                && policy.every_steps > 0
                && self.step.is_multiple_of(policy.every_steps)
            {
                self.save_checkpoint(&policy.dir)?;
                saved = true;
            }
            let progress = Progress {
                step: self.step,
                total_steps: total,
                loss: report.loss,
                learning_rate: report.learning_rate,
                tokens_per_second: tokens as f64 / elapsed,
                eta_seconds: elapsed / steps_here * (total - self.step) as f64,
            };
            if on_progress(&progress) == Control::Cancel {
                if let Some(policy) = checkpoints
                    && !saved
                {
                    self.save_checkpoint(&policy.dir)?;
                }
                return Ok(TrainingOutcome::Cancelled { step: self.step });
            }
        }
        if let Some(policy) = checkpoints {
            self.save_checkpoint(&policy.dir)?;
        }
        Ok(TrainingOutcome::Finished {
            steps: total,
            last_loss,
            held_out: self.evaluate_held_out()?,
        })
    }

    /// The examples held out for evaluation.
    pub fn held_out_examples(&self) -> &[Example] {
        &self.held_out
    }

    /// Loss on the held-out examples with the current factors (`None` when none are held
    /// out). Before the first step the factors leave the base unchanged (`B = 0`), so this is
    /// the base model's loss.
    pub fn evaluate_held_out(&self) -> Result<Option<Evaluation>> {
        if self.held_out.is_empty() {
            return Ok(None);
        }
        self.evaluate(&self.held_out).map(Some)
    }

    fn train_step(&mut self) -> Result<StepReport> {
        let batches: Vec<Batch> = self
            .plan
            .step(self.step)
            .iter()
            .map(|indices| Batch::new(&indices.iter().map(|&i| &self.train[i]).collect::<Vec<_>>()))
            .collect();
        let loss_tokens: usize = batches.iter().map(|b| b.targets.len()).sum();
        let last_epoch = self.step + self.plan.steps_per_epoch() >= self.total_steps();
        let projection = match &self.capture {
            Some(capture) if last_epoch => Some(capture.projection),
            _ => None,
        };
        let StepGradients {
            loss,
            sums: mut gradients,
            per_example,
            projecting,
        } = self.gradients(&batches, loss_tokens, projection.as_ref())?;
        if let Some(capture) = &mut self.capture {
            let indices = self.plan.step(self.step).concat();
            capture.record(&indices, per_example.into_iter().flatten(), projecting);
        }
        let norm = match self.config.clip_norm {
            Some(max_norm) => optim::clip(&mut gradients, max_norm),
            None => optim::global_norm(&gradients),
        };
        if !loss.is_finite() || !norm.is_finite() {
            // Refused before the update: the factors stay those of the last finite step.
            return Err(InferenceError::Invalid(format!(
                "training diverged at step {} (loss {loss}, gradient norm {norm}); lower the \
                 learning rate or clip gradients",
                self.step + 1
            )));
        }
        let learning_rate = self.config.learning_rate_at(self.step, self.total_steps());
        let variables: Vec<_> = self.factors.variables().cloned().collect();
        let mut current = variables
            .iter()
            .map(values)
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| self.compute(e))?;
        self.optimizer.update(
            &mut current,
            &gradients,
            learning_rate as f32,
            self.config.weight_decay,
        );
        for (variable, new) in variables.iter().zip(current) {
            set_values(variable, new).map_err(|e| self.compute(e))?;
        }
        self.step += 1;
        Ok(StepReport {
            loss,
            learning_rate,
            tokens: batches.iter().map(|b| b.real_tokens).sum(),
        })
    }

    /// Mean loss over `loss_tokens` and its gradient for every variable, summed over batches;
    /// with a projection, also every example's projected gradient of its own mean loss (per
    /// batch, per row; [`super::influence`]).
    pub(super) fn gradients(
        &self,
        batches: &[Batch],
        loss_tokens: usize,
        projection: Option<&GradientProjection>,
    ) -> Result<StepGradients> {
        let variables: Vec<_> = self.factors.variables().collect();
        let mut sums: Vec<Vec<f32>> = variables
            .iter()
            .map(|v| vec![0.0; v.elem_count()])
            .collect();
        let mut loss_total = 0f64;
        let mut per_example = Vec::new();
        let mut projecting = std::time::Duration::ZERO;
        for batch in batches {
            let probes = projection.map(|_| Probes::new(self.factors.all().len()));
            let forward = Forward {
                probes: probes.as_ref(),
                ..self.forward()
            };
            let mut run = || -> candle_core::Result<f32> {
                let loss = forward.loss_sum(batch)?;
                let value = loss.to_scalar::<f32>()?;
                let grads = loss.affine(1.0 / loss_tokens as f64, 0.0)?.backward()?;
                if let (Some(probes), Some(projection)) = (&probes, projection) {
                    let started = Instant::now();
                    // The loss differentiated is the step's mean: undo that for each row's own.
                    per_example.push(probes.per_example(
                        &grads,
                        projection,
                        self.factors.scale,
                        batch,
                        loss_tokens as f32,
                    )?);
                    projecting += started.elapsed();
                }
                for (sum, variable) in sums.iter_mut().zip(&variables) {
                    let grad = grads.get(variable.as_tensor()).ok_or_else(|| {
                        candle_core::Error::Msg("a LoRA factor got no gradient".into())
                    })?;
                    let grad = grad.flatten_all()?.to_vec1::<f32>()?;
                    sum.iter_mut().zip(grad).for_each(|(s, g)| *s += g);
                }
                Ok(value)
            };
            loss_total += f64::from(run().map_err(|e| self.compute(e))?);
        }
        Ok(StepGradients {
            loss: (loss_total / loss_tokens as f64) as f32,
            sums,
            per_example,
            projecting,
        })
    }

    /// Mean loss and perplexity over `examples` (the held-out ones after [`Trainer::run`]).
    pub fn evaluate(&self, examples: &[Example]) -> Result<Evaluation> {
        self.check_examples(examples)?;
        let forward = self.forward();
        let (mut total, mut tokens) = (0f64, 0usize);
        for chunk in examples.chunks(self.config.batch_size) {
            let batch = Batch::new(&chunk.iter().collect::<Vec<_>>());
            let loss = forward
                .loss_sum(&batch)
                .and_then(|l| l.to_scalar::<f32>())
                .map_err(|e| self.compute(e))?;
            total += f64::from(loss);
            tokens += batch.targets.len();
        }
        let loss = (total / tokens as f64) as f32;
        Ok(Evaluation {
            loss,
            perplexity: loss.exp(),
            tokens,
        })
    }

    pub(super) fn check_examples(&self, examples: &[Example]) -> Result<()> {
        let model = self.model.config();
        validate_examples(examples, &self.config, model.context_length, model.vocab)
    }
}

fn compute_error(model: &LlamaModel) -> impl Fn(candle_core::Error) -> InferenceError + '_ {
    move |source| InferenceError::Compute {
        model: model.path().to_path_buf(),
        source,
    }
}

/// keccak256 of the base model's files, the config and every example's tokens.
fn fingerprint(
    model: &LlamaModel,
    config: &TrainingConfig,
    examples: &[Example],
) -> Result<[u8; 32]> {
    let mut hasher = Keccak256::new();
    hasher.update(model.content_hash()?);
    let config_json =
        serde_json::to_vec(config).map_err(|e| InferenceError::Invalid(e.to_string()))?;
    hasher.update((config_json.len() as u64).to_le_bytes());
    hasher.update(&config_json);
    hasher.update((examples.len() as u64).to_le_bytes());
    for example in examples {
        for part in [&example.prompt, &example.response] {
            hasher.update((part.len() as u64).to_le_bytes());
            part.iter().for_each(|t| hasher.update(t.to_le_bytes()));
        }
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trainer_can_move_to_a_job_thread() {
        fn send<T: Send>() {}
        send::<super::Trainer>();
    }
}
