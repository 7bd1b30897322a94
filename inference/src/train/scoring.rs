//! [`GradientModel`]: the training forward pass over a served base, kept to compute the
//! projected gradient of an answer's loss under a stored adapter (the query side of
//! training-data influence, [`super::influence`]).
//!
//! Invariants: the base is read as stored (no f32 copy: it costs the memory the served model
//! already holds), the adapter's factors come from the loaded adapter (its rotary rows already
//! in the base's order, as training had them), and the projection is the one the adapter's
//! gradient store names, so an answer's gradient is comparable with every stored row.

use std::sync::Arc;

use super::base::{BaseProduct, FrozenBase};
use super::data::{Batch, Example, validate_examples};
use super::factors::LoraFactors;
use super::forward::Forward;
use super::influence::{GradientProjection, MAX_PROJECTION_WIDTH, Probes};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaModel;
use crate::lora::LoraAdapter;

/// A base model ready for gradients under any of its adapters.
pub struct GradientModel {
    model: Arc<LlamaModel>,
    base: FrozenBase,
}

impl GradientModel {
    /// Wraps `model` (no copy of its weights).
    pub fn new(model: Arc<LlamaModel>) -> Result<Self> {
        let base = FrozenBase::new(&model, BaseProduct::AsStored).map_err(|e| {
            InferenceError::Compute {
                model: model.path().to_path_buf(),
                source: e,
            }
        })?;
        Ok(Self { model, base })
    }

    /// Numbers in a projected gradient under `adapter`.
    pub fn gradient_dim(&self, adapter: &LoraAdapter, projection: &GradientProjection) -> usize {
        let config = self.model.config();
        let factors = (0..config.layers)
            .flat_map(|layer| (0..7).map(move |module| (layer, module)))
            .filter(|&(layer, module)| adapter.factors_at(layer, module).is_some())
            .count();
        2 * adapter.rank() * projection.width * factors
    }

    /// The projected gradient of `example`'s mean loss over its response tokens under
    /// `adapter` (the answer's tokens, teacher-forced after its prompt).
    pub fn gradient(
        &self,
        adapter: &LoraAdapter,
        example: &Example,
        projection: &GradientProjection,
    ) -> Result<Vec<f32>> {
        let config = self.model.config();
        if projection.width == 0 || projection.width > MAX_PROJECTION_WIDTH {
            return Err(InferenceError::Invalid(format!(
                "projection width {} is outside 1..={MAX_PROJECTION_WIDTH}",
                projection.width
            )));
        }
        let limits = super::TrainingConfig {
            max_length: config.context_length,
            ..super::TrainingConfig::default()
        };
        validate_examples(
            std::slice::from_ref(example),
            &limits,
            config.context_length,
            config.vocab,
        )?;
        let factors = LoraFactors::from_adapter(adapter, config.layers).map_err(|reason| {
            InferenceError::Invalid(format!(
                "adapter {} cannot be scored for influence: {reason}",
                adapter.id()
            ))
        })?;
        let probes = Probes::new(factors.all().len());
        let forward = Forward {
            config,
            base: &self.base,
            factors: &factors,
            product: BaseProduct::AsStored,
            probes: Some(&probes),
        };
        let batch = Batch::new(&[example]);
        let rows = (|| -> candle_core::Result<Vec<Vec<f32>>> {
            let grads = forward.loss_sum(&batch)?.backward()?;
            probes.per_example(&grads, projection, factors.scale, &batch, 1.0)
        })()
        .map_err(|e| InferenceError::Compute {
            model: self.model.path().to_path_buf(),
            source: e,
        })?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }
}
