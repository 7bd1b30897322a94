//! LoRA adapters served unmerged over one shared base model (the OpenLoRA / LoRAX / S-LoRA way,
//! on the CPU).
//!
//! - [`peft`] reads a Hugging Face PEFT LoRA folder (`adapter_config.json` +
//!   `adapter_model.safetensors`) against a loaded [`LlamaModel`](crate::llama::LlamaModel):
//!   everything is checked before anything is kept, so a bad adapter is refused whole.
//! - [`AdapterStore`] is the directory source: a content-addressed folder of adapters, one
//!   sub-folder per [`AdapterId`], each with its owner and the hash of its base model.
//! - [`AdapterCache`] loads adapters from a store on first use and keeps them in memory under
//!   a byte budget, evicting the least recently used one that no request holds.
//! - [`AdapterMix`] is what a sequence runs with: zero or more loaded adapters with weights.
//!   A [`Sequence`](crate::llama::Sequence) is bound to its mix for life, so cached keys and
//!   values are never shared across adapters.
//!
//! Invariants: a loaded [`LoraAdapter`] is immutable; a request holds it by `Arc`, so replacing
//! or removing the adapter, or evicting it from the cache, never changes a request in flight.

mod adapter;
mod cache;
pub mod gradient_index;
pub mod gradients;
pub mod peft;
pub mod provenance;
pub mod random;
mod store;

pub use adapter::{AdapterId, AdapterMix, LoraAdapter, MODULES};
pub(crate) use adapter::{LayerFactors, Module};
pub use cache::{AdapterCache, CacheStats, MAX_ADAPTERS_PER_REQUEST};
pub use gradient_index::GradientIndex;
pub use gradients::{GRADIENTS_FILE, GradientHeader, GradientStore};
pub use provenance::{GradientStoreInfo, TrainingContributor, TrainingProvenance};
pub use store::{AdapterInfo, AdapterStore, Training, adapter_id};
