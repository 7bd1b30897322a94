//! A loaded adapter and what a sequence runs with: [`LoraAdapter`] (factors by layer and
//! [`Module`], checked against a base shape), [`AdapterMix`] (adapters with weights) and
//! [`AdapterId`]. The forward pass reads these; loading them ([`super::peft`],
//! [`super::AdapterStore`], [`super::AdapterCache`]) is the rest of the `lora` module.
//!
//! Invariants: a [`LoraAdapter`] is immutable once built; an [`AdapterMix`]'s weights are
//! finite.

use std::fmt;
use std::sync::Arc;

use provdb_kernels::LowRank;

use crate::error::{InferenceError, Result};
use crate::llama::LlamaConfig;

/// The linear layers of a decoder block an adapter may target, in PEFT's names.
pub const MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Index of each module in [`MODULES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Module {
    Query = 0,
    Key = 1,
    Value = 2,
    Output = 3,
    Gate = 4,
    Up = 5,
    Down = 6,
}

/// An adapter's id: keccak256 over its files (see [`AdapterStore`] for the exact bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdapterId(pub [u8; 32]);

impl fmt::Display for AdapterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for AdapterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl AdapterId {
    /// Parses `0x` + 64 hex digits (the `0x` is optional).
    pub fn parse(text: &str) -> Result<Self> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut id = [0u8; 32];
        hex::decode_to_slice(digits, &mut id).map_err(|_| {
            InferenceError::Invalid(format!(
                "'{text}' is not an adapter id (0x and 64 hex digits)"
            ))
        })?;
        Ok(Self(id))
    }
}

/// One decoder block's adapter factors, by [`Module`]; `None` where the adapter has none.
pub(crate) type LayerFactors = [Option<LowRank>; 7];

/// A loaded adapter: its factors for every targeted layer, ready for the forward pass.
pub struct LoraAdapter {
    pub(super) id: AdapterId,
    pub(super) layers: Vec<LayerFactors>,
    /// `lora_alpha / r` (or `/ √r` with rsLoRA) per layer and module.
    pub(super) scales: Vec<[f32; 7]>,
    pub(super) rank: usize,
    pub(super) targets: Vec<&'static str>,
    pub(super) bytes: usize,
    /// The base shape it was checked against: [`LlamaConfig::adapter_shape`].
    pub(super) base_shape: [usize; 4],
}

impl fmt::Debug for LoraAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoraAdapter")
            .field("id", &self.id)
            .field("rank", &self.rank)
            .field("targets", &self.targets)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl LoraAdapter {
    /// Its id.
    pub fn id(&self) -> AdapterId {
        self.id
    }

    /// The largest rank of its factors.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The modules it targets, in PEFT's names.
    pub fn targets(&self) -> &[&'static str] {
        &self.targets
    }

    /// Bytes of its factors in memory.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// True when it was loaded for a base of `config`'s shape.
    pub fn fits(&self, config: &LlamaConfig) -> bool {
        self.base_shape == config.adapter_shape()
    }

    /// Factors and scale of module `module` (index in [`MODULES`]) of `layer`.
    pub(crate) fn factors_at(&self, layer: usize, module: usize) -> Option<(&LowRank, f32)> {
        let factors = self.layers.get(layer)?.get(module)?.as_ref()?;
        Some((factors, self.scales[layer][module]))
    }

    /// Factors and scale of one module of one layer.
    pub(crate) fn factors(&self, layer: usize, module: Module) -> Option<(&LowRank, f32)> {
        let factors = self.layers.get(layer)?[module as usize].as_ref()?;
        Some((factors, self.scales[layer][module as usize]))
    }
}

/// The adapters a sequence runs with and their weights: the delta `Σ wᵢ sᵢ Bᵢ Aᵢ x` is added to
/// every targeted layer, unmerged. Empty: the base model.
#[derive(Clone, Debug, Default)]
pub struct AdapterMix {
    adapters: Vec<(Arc<LoraAdapter>, f32)>,
}

impl AdapterMix {
    /// The base model alone.
    pub fn base() -> Self {
        Self::default()
    }

    /// One adapter at weight 1.
    pub fn single(adapter: Arc<LoraAdapter>) -> Self {
        Self {
            adapters: vec![(adapter, 1.0)],
        }
    }

    /// Several adapters with weights (a weight must be finite).
    pub fn weighted(adapters: Vec<(Arc<LoraAdapter>, f32)>) -> Result<Self> {
        if let Some((adapter, weight)) = adapters.iter().find(|(_, w)| !w.is_finite()) {
            return Err(InferenceError::Invalid(format!(
                "adapter {} has weight {weight}; weights must be finite numbers",
                adapter.id()
            )));
        }
        Ok(Self { adapters })
    }

    /// True for the base model.
    pub fn is_base(&self) -> bool {
        self.adapters.is_empty()
    }

    /// The adapters and weights.
    pub fn adapters(&self) -> &[(Arc<LoraAdapter>, f32)] {
        &self.adapters
    }

    /// `0xID:WEIGHT` of each adapter, in order.
    pub fn describe(&self) -> Vec<String> {
        self.adapters
            .iter()
            .map(|(a, w)| format!("{}:{w}", a.id()))
            .collect()
    }
}
