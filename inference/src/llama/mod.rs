//! LLaMA-family decoder: GGUF (quantized) or Hugging Face safetensors (float), on provdb's own
//! forward pass over candle-loaded tensors and the kernels crate's quantized matrix products.
//!
//! Paper: Touvron et al., "LLaMA" (2023), <https://arxiv.org/abs/2302.13971>. Reference
//! implementation: llama.cpp, whose GGUF layout and Q4_1 × Q8 arithmetic this follows.
//!
//! [`LlamaModel`] is the loaded model: weights, configuration, tokenizer; immutable, `Sync`,
//! shared behind `Arc`. Its [`LlamaModel::forward`] runs one step of a ragged batch of
//! sequences (prefill and decode rows mixed), each [`Sequence`] owning its KV cache.
//! [`Llama`] is a one-sequence session over a shared model (prefill, decode, greedy,
//! streaming generation); [`Generator`] batches many requests in one decoding loop.

mod config;
mod engine;
mod forward;
mod gguf;
mod gguf_header;
mod safetensors;
mod sampling;
mod session;
mod template;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::quantized::gguf_file::Content;
use tokenizers::Tokenizer;

pub use config::LlamaConfig;
pub use engine::{
    FinishReason, GenerationEvent, GenerationRequest, Generator, GeneratorOptions, TokenStream,
};
pub use forward::{LogitsWanted, Sequence, StepInput};
pub use sampling::{Sampler, SamplingParams, argmax};
pub use session::Llama;
pub use template::{ChatMessage, ChatRole, ChatTemplate, neutralize};
pub use tokenizer::tokenizer_from_gguf;

use crate::error::{InferenceError, Result};
pub(crate) use weights::block_shapes;
pub(crate) use weights::{LayerWeights, LlamaWeights};

/// A loaded LLaMA-family model, immutable and shareable between threads.
#[derive(Debug)]
pub struct LlamaModel {
    config: LlamaConfig,
    weights: LlamaWeights,
    tokenizer: Tokenizer,
    end_of_turn: Vec<u32>,
    template: ChatTemplate,
    path: PathBuf,
    content_hash: OnceLock<[u8; 32]>,
}

impl LlamaModel {
    /// Loads a GGUF file, or a Hugging Face folder (`config.json`, `*.safetensors`,
    /// `tokenizer.json`). A GGUF's tokenizer is `tokenizer.json` beside it when there is one,
    /// else built from its metadata.
    pub fn load(path: &Path) -> Result<Arc<Self>> {
        if path.is_dir() {
            return Self::load_safetensors(path).map(Arc::new);
        }
        if !path.is_file() {
            return Err(InferenceError::MissingFile {
                path: path.to_path_buf(),
                what: "the generator model (a GGUF file or a model folder)",
            });
        }
        Self::load_gguf(path).map(Arc::new)
    }

    fn load_gguf(path: &Path) -> Result<Self> {
        let bad = |reason: String| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = fs_err::File::open(path).map_err(|e| bad(e.to_string()))?;
        gguf_header::check(&mut file, path)?;
        let content =
            Content::read(&mut file).map_err(|e| bad(format!("not a readable GGUF file: {e}")))?;
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if architecture != "llama" {
            return Err(InferenceError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "architecture '{architecture}' (LLaMA-family 'llama' is supported)"
                ),
            });
        }
        let config = LlamaConfig::from_gguf(&content, path)?;
        let sibling = path.with_file_name("tokenizer.json");
        let tokenizer = if sibling.is_file() {
            read_tokenizer(&sibling)?
        } else {
            tokenizer_from_gguf(&content, path)?
        };
        let weights = gguf::load_weights(&content, &mut file, path, &config)?;
        Ok(Self::new(config, weights, tokenizer, path))
    }

    fn load_safetensors(dir: &Path) -> Result<Self> {
        let config_path =
            crate::model_files::required(dir, "config.json", "the model configuration")?;
        let config = LlamaConfig::from_hf_json(&config_path)?;
        let tied = config::hf_ties_embeddings(&config_path)?;
        let tokenizer_path = crate::model_files::required(dir, "tokenizer.json", "the tokenizer")?;
        let tokenizer = read_tokenizer(&tokenizer_path)?;
        let weights = safetensors::load_weights(dir, &config, tied)?;
        Ok(Self::new(config, weights, tokenizer, dir))
    }

    fn new(config: LlamaConfig, weights: LlamaWeights, tokenizer: Tokenizer, path: &Path) -> Self {
        let end_of_turn = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        let template = ChatTemplate::detect(&tokenizer);
        Self {
            config,
            weights,
            tokenizer,
            end_of_turn,
            template,
            path: path.to_path_buf(),
            content_hash: OnceLock::new(),
        }
    }

    /// keccak256 of the files it was loaded from (a GGUF file; or a folder's `config.json`
    /// then its `*.safetensors` in name order): what an adapter's base-model hash names.
    /// Computed on first use (a pass over the weights), then remembered.
    pub fn content_hash(&self) -> Result<[u8; 32]> {
        if let Some(hash) = self.content_hash.get() {
            return Ok(*hash);
        }
        let files = if self.path.is_dir() {
            let mut files = vec![self.path.join("config.json")];
            files.extend(safetensors::safetensors_files(&self.path)?);
            files
        } else {
            vec![self.path.clone()]
        };
        let hash = crate::model_files::keccak_of_files(&files)?;
        Ok(*self.content_hash.get_or_init(|| hash))
    }

    /// The hyperparameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The file or folder it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The weights, as the forward pass computes with them (the trainer reads them too).
    pub(crate) fn weights(&self) -> &LlamaWeights {
        &self.weights
    }

    /// Bytes of weights in memory.
    pub fn weight_bytes(&self) -> usize {
        self.weights.byte_size()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, special tokens recognised, no BOS added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| InferenceError::Invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| InferenceError::Invalid(format!("cannot decode: {e}")))
    }

    /// A one-turn chat prompt in the model's own template (recognised from its special
    /// tokens: ChatML for SmolLM2).
    pub fn chat_prompt(&self, user: &str) -> String {
        self.template.prompt(user)
    }

    /// The chat template in use.
    pub fn chat_template(&self) -> ChatTemplate {
        self.template
    }

    /// Token ids that end an assistant turn.
    pub fn end_of_turn(&self) -> &[u32] {
        &self.end_of_turn
    }

    /// Runs one step of a ragged batch in the current rayon pool: every input's new tokens
    /// are appended to its sequence; returns, per input, the logits it asked for. Fails
    /// (changing no sequence) when a sequence would exceed the context or a token id is
    /// outside the vocabulary.
    pub fn forward(&self, inputs: &mut [StepInput<'_>]) -> Result<Vec<Vec<Vec<f32>>>> {
        if rayon::current_thread_index().is_some() {
            return forward::forward(&self.config, &self.weights, inputs);
        }
        // Called from outside the pool: run the whole step on a pool thread, so the dozens of
        // parallel products inside it fork and join among pool threads instead of each being
        // injected from (and waited for by) this thread.
        rayon::scope(|_| forward::forward(&self.config, &self.weights, inputs))
    }
}

fn read_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: format!("not a tokenizer: {e}"),
    })
}
