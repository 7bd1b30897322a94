//! Recording every training example's projected gradient ([`super::influence`]) for
//! training-data influence: during the last epoch, from the backward passes the steps run
//! anyway (TracIn's gradients at the checkpoints a record was trained at, Pruthi et al. 2020,
//! <https://arxiv.org/abs/2002.08484>), and for examples the last epoch did not record here (a
//! run resumed from a checkpoint mid-epoch) at the final factors.
//!
//! Invariants: each training example has exactly one gradient at the end, of its own mean loss;
//! rows follow the order of the examples given to [`Trainer::new`], held-out ones left out.

use std::time::{Duration, Instant};

use super::data::{Batch, Example};
use super::influence::{GradientProjection, MAX_PROJECTION_WIDTH, Probes, projection_matrices};
use super::trainer::Trainer;
use crate::error::{InferenceError, Result};

/// The gradients recorded so far, by training example.
pub(crate) struct Capture {
    pub(crate) projection: GradientProjection,
    rows: Vec<Option<Vec<f32>>>,
    /// Time spent projecting so far.
    spent: Duration,
}

impl Capture {
    /// Stores `gradients` (in step order) for the training examples `indices`, projected in
    /// `spent`.
    pub(crate) fn record(
        &mut self,
        indices: &[usize],
        gradients: impl Iterator<Item = Vec<f32>>,
        spent: Duration,
    ) {
        self.spent += spent;
        for (&index, gradient) in indices.iter().zip(gradients) {
            if let Some(row) = self.rows.get_mut(index) {
                *row = Some(gradient);
            }
        }
    }
}

/// Every training example's projected gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingGradients {
    /// How they were projected.
    pub projection: GradientProjection,
    /// Numbers per gradient.
    pub dim: usize,
    /// One per training example.
    pub rows: Vec<Vec<f32>>,
    /// The position of each row's example among those given to [`Trainer::new`].
    pub example_indices: Vec<usize>,
    /// Each row's example's loss tokens (its response tokens trained on).
    pub loss_tokens: Vec<usize>,
    /// Time spent projecting them (in this process: a resumed run counts from its restart).
    pub spent: Duration,
}

fn check_width(projection: &GradientProjection) -> Result<()> {
    if projection.width == 0 || projection.width > MAX_PROJECTION_WIDTH {
        return Err(InferenceError::Invalid(format!(
            "projection width {} is outside 1..={MAX_PROJECTION_WIDTH}",
            projection.width
        )));
    }
    Ok(())
}

impl Trainer {
    /// Records every training example's gradient, projected by `projection`, from the steps of
    /// the last epoch; [`Trainer::training_gradients`] returns them after the run.
    pub fn capture_gradients(&mut self, projection: GradientProjection) -> Result<()> {
        check_width(&projection)?;
        self.capture = Some(Capture {
            projection,
            rows: vec![None; self.train.len()],
            spent: Duration::ZERO,
        });
        Ok(())
    }

    /// Numbers in one projected gradient: `2 · rank · width` per trained factor.
    pub fn gradient_dim(&self, projection: &GradientProjection) -> usize {
        2 * self.config.rank * projection.width * self.factors.all().len()
    }

    /// Each example's projected gradient of its own mean loss at the current factors, batched
    /// by the config's batch size.
    pub fn example_gradients(
        &self,
        examples: &[Example],
        projection: &GradientProjection,
    ) -> Result<Vec<Vec<f32>>> {
        check_width(projection)?;
        self.check_examples(examples)?;
        let mut out = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(self.config.batch_size) {
            let batch = Batch::new(&chunk.iter().collect::<Vec<_>>());
            let probes = Probes::new(self.factors.all().len());
            let forward = super::forward::Forward {
                probes: Some(&probes),
                ..self.forward()
            };
            let rows = (|| -> candle_core::Result<Vec<Vec<f32>>> {
                let grads = forward.loss_sum(&batch)?.backward()?;
                probes.per_example(&grads, projection, self.factors.scale, &batch, 1.0)
            })()
            .map_err(|e| self.compute(e))?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// `gradients` (a full gradient of every factor, as [`Trainer::loss_and_gradients`] gives
    /// it) projected as [`Trainer::example_gradients`] projects: `A·P_inᵀ` then `P_out·B` per
    /// factor. For checks: it is what an example's projected gradient must equal.
    pub fn project_gradient(
        &self,
        gradients: &[super::FactorValues],
        projection: &GradientProjection,
    ) -> Result<Vec<f32>> {
        check_width(projection)?;
        let mut out = Vec::with_capacity(self.gradient_dim(projection));
        for (index, (factor, gradient)) in self.factors.all().iter().zip(gradients).enumerate() {
            let [(rank, input), (output, _)] = factor.shapes();
            let project = || -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
                let (p_in, p_out) = projection_matrices(projection, index, input, output)?;
                let device = &candle_core::Device::Cpu;
                let a = candle_core::Tensor::from_slice(&gradient.a, (rank, input), device)?;
                let b = candle_core::Tensor::from_slice(&gradient.b, (output, rank), device)?;
                Ok((
                    a.matmul(&p_in.t()?)?.flatten_all()?.to_vec1()?,
                    p_out.matmul(&b)?.flatten_all()?.to_vec1()?,
                ))
            };
            let (a, b) = project().map_err(|e| self.compute(e))?;
            out.extend(a.into_iter().chain(b));
        }
        Ok(out)
    }

    /// The recorded gradients, those missing computed now at the current factors (`None`
    /// unless [`Trainer::capture_gradients`] was called).
    pub fn training_gradients(&self) -> Result<Option<TrainingGradients>> {
        let Some(capture) = &self.capture else {
            return Ok(None);
        };
        let started = Instant::now();
        let missing: Vec<usize> = (0..capture.rows.len())
            .filter(|&i| capture.rows[i].is_none())
            .collect();
        let examples: Vec<Example> = missing.iter().map(|&i| self.train[i].clone()).collect();
        let mut computed = if examples.is_empty() {
            Vec::new()
        } else {
            self.example_gradients(&examples, &capture.projection)?
        }
        .into_iter();
        let rows = capture
            .rows
            .iter()
            .map(|row| row.clone().or_else(|| computed.next()).unwrap_or_default())
            .collect();
        Ok(Some(TrainingGradients {
            projection: capture.projection,
            dim: self.gradient_dim(&capture.projection),
            rows,
            example_indices: self.train_indices.clone(),
            loss_tokens: self.train.iter().map(Example::loss_tokens).collect(),
            spent: capture.spent + started.elapsed(),
        }))
    }
}
