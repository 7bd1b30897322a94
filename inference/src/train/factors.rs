//! The trained LoRA factors: for every block and targeted module, `A` (`rank × input`) and `B`
//! (`output × rank`) as candle variables, initialised as PEFT does (`A` Kaiming-uniform with
//! `a = √5`, i.e. uniform in `±1/√input`; `B` zero, so training starts from the base model).
//!
//! Invariants: factors are ordered by layer, then module in [`MODULES`] order, and that order
//! is the order of the optimiser's moments, of checkpoints and of the initial values drawn from
//! the seed; `B` of `q_proj` and `k_proj` has its rows in the base's adjacent-pair rotary order
//! (see [`super::export`] for the Hugging Face order written out).

use candle_core::{Device, Tensor, Var};

use super::config::TrainingConfig;
use super::rng::{SplitMix64, Stream};
use crate::llama::LlamaConfig;
use crate::lora::MODULES;
use crate::lora::peft::widths;

/// The factors of one module of one block.
#[derive(Debug)]
pub(crate) struct Factor {
    pub(crate) layer: usize,
    /// Index in [`MODULES`].
    pub(crate) module: usize,
    pub(crate) a: Var,
    pub(crate) b: Var,
}

impl Factor {
    /// `lora_A`'s `(rank, input)` and `lora_B`'s `(output, rank)`.
    pub(crate) fn shapes(&self) -> [(usize, usize); 2] {
        let dims = |v: &Var| {
            let d = v.dims();
            (d[0], d[1])
        };
        [dims(&self.a), dims(&self.b)]
    }
}

/// Every trained factor, with the scale applied to every delta.
#[derive(Debug)]
pub(crate) struct LoraFactors {
    factors: Vec<Factor>,
    /// `by_layer[layer][module]`: index into `factors`.
    by_layer: Vec<[Option<usize>; 7]>,
    pub(crate) scale: f32,
}

impl LoraFactors {
    /// Fresh factors for `training`'s targets on a base with `model`'s shapes.
    pub(crate) fn init(
        model: &LlamaConfig,
        training: &TrainingConfig,
    ) -> candle_core::Result<Self> {
        let targeted = training.targeted();
        let widths = widths(model);
        let rank = training.rank;
        let mut rng = SplitMix64::new(training.seed, Stream::Init);
        let mut factors = Vec::new();
        let mut by_layer = vec![[None; 7]; model.layers];
        for (layer, slots) in by_layer.iter_mut().enumerate() {
            for module in (0..MODULES.len()).filter(|&m| targeted[m]) {
                let (input, output) = widths[module];
                let bound = 1.0 / (input as f32).sqrt();
                let a: Vec<f32> = (0..rank * input)
                    .map(|_| (2.0 * rng.next_unit_f32() - 1.0) * bound)
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (rank, input), &Device::Cpu)?)?;
                let b = Var::zeros((output, rank), candle_core::DType::F32, &Device::Cpu)?;
                slots[module] = Some(factors.len());
                factors.push(Factor {
                    layer,
                    module,
                    a,
                    b,
                });
            }
        }
        Ok(Self {
            factors,
            by_layer,
            scale: training.scale(),
        })
    }

    /// The factors of `module` (index in [`MODULES`]) of `layer`, if targeted.
    pub(crate) fn get(&self, layer: usize, module: usize) -> Option<&Factor> {
        self.factors.get(self.index(layer, module)?)
    }

    /// The factors of a loaded adapter, for the training forward pass: each module's `A` and
    /// `B` (its rows already in the base's rotary order), as constants of a fixed scale.
    /// [`InferenceError`](crate::error::InferenceError)-worthy shapes were checked at load;
    /// an adapter whose modules differ in scale is refused here.
    pub(crate) fn from_adapter(
        adapter: &crate::lora::LoraAdapter,
        layers: usize,
    ) -> std::result::Result<Self, String> {
        let mut factors = Vec::new();
        let mut by_layer = vec![[None; 7]; layers];
        let mut scale = None;
        for (layer, slots) in by_layer.iter_mut().enumerate() {
            for (module, slot) in slots.iter_mut().enumerate() {
                let Some((low_rank, module_scale)) = adapter.factors_at(layer, module) else {
                    continue;
                };
                if *scale.get_or_insert(module_scale) != module_scale {
                    return Err("its modules have different scales (per-module ranks)".into());
                }
                let (rank, input, output) = (low_rank.rank(), low_rank.input(), low_rank.output());
                let (a, expand) = low_rank.f32_factors();
                // `expand` is Bᵀ (`rank × output`): B is its transpose.
                let mut b = vec![0f32; output * rank];
                for j in 0..rank {
                    for o in 0..output {
                        b[o * rank + j] = expand[j * output + o];
                    }
                }
                let tensor = |values: Vec<f32>, shape: (usize, usize)| {
                    Tensor::from_vec(values, shape, &Device::Cpu)
                        .and_then(|t| Var::from_tensor(&t))
                        .map_err(|e| e.to_string())
                };
                *slot = Some(factors.len());
                factors.push(Factor {
                    layer,
                    module,
                    a: tensor(a, (rank, input))?,
                    b: tensor(b, (output, rank))?,
                });
            }
        }
        Ok(Self {
            factors,
            by_layer,
            scale: scale.unwrap_or(0.0),
        })
    }

    /// The position of the factor of `module` of `layer` in [`Self::all`], if targeted.
    pub(crate) fn index(&self, layer: usize, module: usize) -> Option<usize> {
        (*self.by_layer.get(layer)?)[module]
    }

    /// Every factor in order.
    pub(crate) fn all(&self) -> &[Factor] {
        &self.factors
    }

    /// Every variable in order: `A` then `B` of each factor.
    pub(crate) fn variables(&self) -> impl Iterator<Item = &Var> {
        self.factors.iter().flat_map(|f| [&f.a, &f.b])
    }
}

/// A variable's values, flattened row-major.
pub(crate) fn values(var: &Var) -> candle_core::Result<Vec<f32>> {
    var.as_tensor().flatten_all()?.to_vec1()
}

/// Replaces a variable's values (same count, row-major).
pub(crate) fn set_values(var: &Var, values: Vec<f32>) -> candle_core::Result<()> {
    let tensor = Tensor::from_vec(values, var.shape(), &Device::Cpu)?;
    var.set(&tensor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LlamaConfig {
        LlamaConfig {
            hidden: 8,
            heads: 2,
            kv_heads: 1,
            layers: 2,
            feed_forward: 12,
            vocab: 10,
            context_length: 16,
            rms_eps: 1e-5,
            rope_base: 10_000.0,
        }
    }

    #[test]
    fn a_is_kaiming_uniform_and_b_is_zero_in_a_fixed_order() {
        let training = TrainingConfig {
            rank: 3,
            targets: vec!["down_proj".into(), "q_proj".into()],
            ..TrainingConfig::default()
        };
        let factors = LoraFactors::init(&tiny(), &training).unwrap();
        let order: Vec<(usize, usize)> =
            factors.all().iter().map(|f| (f.layer, f.module)).collect();
        assert_eq!(order, vec![(0, 0), (0, 6), (1, 0), (1, 6)]);
        let down = factors.get(0, 6).unwrap();
        assert_eq!(down.shapes(), [(3, 12), (8, 3)]);
        let a = values(&down.a).unwrap();
        let bound = 1.0 / 12f32.sqrt();
        assert!(a.iter().all(|v| v.abs() <= bound) && a.iter().any(|v| v.abs() > bound / 2.0));
        assert!(values(&down.b).unwrap().iter().all(|&v| v == 0.0));
        assert!(factors.get(0, 1).is_none());
        let again = LoraFactors::init(&tiny(), &training).unwrap();
        assert_eq!(
            values(&again.get(1, 0).unwrap().a).unwrap(),
            values(&factors.get(1, 0).unwrap().a).unwrap()
        );
    }
}
