//! A LLaMA-family model's hyperparameters, from GGUF metadata (`llama.*`) or from a Hugging Face
//! `config.json`. Invariants after construction: every count is positive, `hidden` splits into
//! `heads` heads of `head_dim` (even, for RoPE pairs) and `heads` is a multiple of `kv_heads`.

use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use serde::Deserialize;

use crate::error::{InferenceError, Result};

/// Hyperparameters of a LLaMA-family decoder.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Width of the residual stream.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Decoder blocks.
    pub layers: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub feed_forward: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Longest sequence, prompt and generated tokens together.
    pub context_length: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency.
    pub rope_base: f32,
}

impl LlamaConfig {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Width of the keys (and values) of one position.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// The shape a LoRA adapter must fit: layers, hidden, key/value width, feed-forward.
    pub(crate) fn adapter_shape(&self) -> [usize; 4] {
        [self.layers, self.hidden, self.kv_dim(), self.feed_forward]
    }

    fn validated(self, path: &Path) -> Result<Self> {
        let bad = |reason: String| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let counts = [
            self.hidden,
            self.heads,
            self.kv_heads,
            self.layers,
            self.feed_forward,
            self.vocab,
            self.context_length,
        ];
        if counts.contains(&0) {
            return Err(bad(format!("a hyperparameter is zero: {self:?}")));
        }
        if !self.hidden.is_multiple_of(self.heads) || !self.head_dim().is_multiple_of(2) {
            return Err(bad(format!(
                "{} dims do not split into {} heads of even width",
                self.hidden, self.heads
            )));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(bad(format!(
                "{} query heads are not a multiple of {} key/value heads",
                self.heads, self.kv_heads
            )));
        }
        Ok(self)
    }

    /// From a GGUF file's metadata (architecture `llama`).
    pub fn from_gguf(content: &Content, path: &Path) -> Result<Self> {
        let bad = |reason: String| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let number = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("no '{key}' in the GGUF metadata")))
        };
        let float = |key: &str, default: f32| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(default)
        };
        let hidden = number("llama.embedding_length")?;
        let heads = number("llama.attention.head_count")?;
        let vocab = content
            .tensor_infos
            .get("token_embd.weight")
            .and_then(|t| t.shape.dims().first().copied())
            .ok_or_else(|| bad("tensor 'token_embd.weight' is missing".into()))?;
        let config = Self {
            hidden,
            heads,
            kv_heads: number("llama.attention.head_count_kv").unwrap_or(heads),
            layers: number("llama.block_count")?,
            feed_forward: match number("llama.feed_forward_length") {
                Ok(width) => width,
                Err(missing) => content
                    .tensor_infos
                    .get("blk.0.ffn_up.weight")
                    .and_then(|t| t.shape.dims().first().copied())
                    .ok_or(missing)?,
            },
            vocab,
            context_length: number("llama.context_length").unwrap_or(2048),
            rms_eps: float("llama.attention.layer_norm_rms_epsilon", 1e-5),
            rope_base: float("llama.rope.freq_base", 10_000.0),
        }
        .validated(path)?;
        if let Ok(rotary) = number("llama.rope.dimension_count")
            && rotary != config.head_dim()
        {
            return Err(InferenceError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "partial rotary embeddings ({rotary} of {} dims)",
                    config.head_dim()
                ),
            });
        }
        Ok(config)
    }

    /// From a Hugging Face `config.json` (`model_type` `llama`).
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let raw: HfConfig = crate::model_files::read_json(path)?;
        let unsupported = |reason: String| InferenceError::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        if raw.model_type.as_deref() != Some("llama") {
            return Err(unsupported(format!(
                "model_type {:?} (LLaMA-family 'llama' is supported)",
                raw.model_type.unwrap_or_default()
            )));
        }
        if raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported("rope_scaling is not supported".into()));
        }
        if raw.hidden_act.as_deref().is_some_and(|a| a != "silu") {
            return Err(unsupported(format!("hidden_act {:?}", raw.hidden_act)));
        }
        Self {
            hidden: raw.hidden_size,
            heads: raw.num_attention_heads,
            kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            layers: raw.num_hidden_layers,
            feed_forward: raw.intermediate_size,
            vocab: raw.vocab_size,
            context_length: raw.max_position_embeddings.unwrap_or(2048),
            rms_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_base: raw.rope_theta.unwrap_or(10_000.0),
        }
        .validated(path)
    }
}

/// The fields of a Hugging Face LLaMA `config.json` provdb reads.
#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    num_hidden_layers: usize,
    vocab_size: usize,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f32>,
    rope_theta: Option<f32>,
    rope_scaling: Option<serde_json::Value>,
    hidden_act: Option<String>,
}

/// Whether a Hugging Face `config.json` ties the output head to the embeddings.
pub(crate) fn hf_ties_embeddings(path: &Path) -> Result<bool> {
    #[derive(Deserialize)]
    struct Tie {
        tie_word_embeddings: Option<bool>,
    }
    let tie: Tie = crate::model_files::read_json(path)?;
    Ok(tie.tie_word_embeddings.unwrap_or(false))
}
