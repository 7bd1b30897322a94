//! provdb-inference: models on candle.
//!
//! Owns the MiniLM-class sentence embedder ([`Embedder`]), the LLaMA-family generator
//! ([`llama`]: GGUF and safetensors, provdb's own forward pass, batched decoding and streaming),
//! PEFT LoRA adapters served unmerged ([`lora`]: load, byte-bounded cache, mixed-adapter
//! batches) and LoRA training ([`train`]). Models are loaded once and shared behind `Arc`;
//! every entry point is safe to call from many threads. Depends on kernels only.

mod embedder;
mod error;
pub mod llama;
pub mod lora;
pub mod model_files;
pub mod train;

pub use embedder::{Embedder, EmbedderConfig, MAX_TEXTS_PER_CALL};
pub use error::{InferenceError, Result};
pub use provdb_kernels as kernels;
