//! Sentence embedder: a BERT-family encoder (all-MiniLM-L6-v2 class) from safetensors, then
//! mean pooling over the attention mask and L2 normalisation, as sentence-transformers does.
//!
//! Paper: Reimers & Gurevych, "Sentence-BERT" (2019), <https://arxiv.org/abs/1908.10084>.
//! Reference implementation: sentence-transformers' `Pooling(mean)` + `Normalize` modules over
//! Hugging Face's `BertModel`; the encoder here is candle-transformers' BERT, with weights named
//! as the checkpoint names them.
//!
//! Invariants: the output for a text does not depend on the other texts of the call (padding
//! is masked out of attention and pooling); inputs are truncated to the model's
//! `max_seq_length` (256 for all-MiniLM-L6-v2) tokens, special tokens included; vectors have
//! unit L2 norm.

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{InferenceError, Result};
use crate::model_files::{read_json, required};

/// Most texts one `embed` call accepts.
pub const MAX_TEXTS_PER_CALL: usize = 65_536;

/// How an embedder runs.
#[derive(Clone, Copy, Debug)]
pub struct EmbedderConfig {
    /// Texts per forward pass.
    pub batch_size: usize,
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        Self { batch_size: 32 }
    }
}

/// `sentence_bert_config.json`, when the model folder has one.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// A loaded sentence embedder. Share it behind an `Arc`; `embed` takes `&self`.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dim: usize,
    max_tokens: usize,
    config: EmbedderConfig,
    dir: PathBuf,
}

impl Embedder {
    /// Loads a Hugging Face style folder: `config.json`, `model.safetensors`, `tokenizer.json`
    /// and, optionally, `sentence_bert_config.json`.
    pub fn load(dir: &Path, config: EmbedderConfig) -> Result<Self> {
        let config_path = required(dir, "config.json", "the model configuration")?;
        let weights_path = required(dir, "model.safetensors", "the model weights")?;
        let tokenizer_path = required(dir, "tokenizer.json", "the tokenizer")?;
        let raw: serde_json::Value = read_json(&config_path)?;
        match raw.get("model_type").and_then(|t| t.as_str()) {
            None | Some("bert") => {}
            Some(other) => {
                return Err(InferenceError::Unsupported {
                    path: config_path,
                    reason: format!("model_type '{other}'; the embedder runs BERT-family encoders"),
                });
            }
        }
        let bert: Config =
            serde_json::from_value(raw).map_err(|e| InferenceError::BadModelFile {
                path: config_path.clone(),
                reason: format!("not a BERT configuration: {e}"),
            })?;
        let max_tokens = match dir.join("sentence_bert_config.json") {
            path if path.is_file() => read_json::<SentenceBertConfig>(&path)?.max_seq_length,
            _ => bert.max_position_embeddings,
        }
        .min(bert.max_position_embeddings);

        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(&weights_path, &device).map_err(|e| {
            InferenceError::BadModelFile {
                path: weights_path.clone(),
                reason: format!("unreadable safetensors: {e}"),
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &bert).map_err(|e| InferenceError::BadModelFile {
            path: weights_path.clone(),
            reason: e.to_string(),
        })?;

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| InferenceError::BadModelFile {
                path: tokenizer_path.clone(),
                reason: format!("not a tokenizer: {e}"),
            })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| InferenceError::BadModelFile {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        let pad_token = tokenizer
            .id_to_token(bert.pad_token_id as u32)
            .unwrap_or_else(|| "[PAD]".into());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: bert.pad_token_id as u32,
            pad_token,
            ..PaddingParams::default()
        }));
        Ok(Self {
            model,
            tokenizer,
            device,
            dim: bert.hidden_size,
            max_tokens,
            config: EmbedderConfig {
                batch_size: config.batch_size.max(1),
            },
            dir: dir.to_path_buf(),
        })
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens kept per text (special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The token ids the model sees for `text` (truncated, with special tokens).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| InferenceError::Invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Unit vectors, one per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.len() > MAX_TEXTS_PER_CALL {
            return Err(InferenceError::Invalid(format!(
                "{} texts in one call; the limit is {MAX_TEXTS_PER_CALL}",
                texts.len()
            )));
        }
        // Similar lengths share a batch, so little compute goes to padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for indices in order.chunks(self.config.batch_size) {
            let batch: Vec<&str> = indices.iter().map(|&i| texts[i]).collect();
            let vectors = self.embed_batch(&batch)?;
            for (&i, vector) in indices.iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| InferenceError::Invalid(format!("cannot tokenize: {e}")))?;
        let rows = encodings.len();
        let width = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend(encoding.get_attention_mask().iter().map(|&m| m as f32));
        }
        self.pool(ids, mask, rows, width)
            .map_err(|source| InferenceError::Compute {
                model: self.dir.clone(),
                source,
            })
    }

    /// Encoder forward, masked mean pooling, L2 normalisation.
    fn pool(
        &self,
        ids: Vec<u32>,
        mask: Vec<f32>,
        rows: usize,
        width: usize,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let mask = mask.unsqueeze(D::Minus1)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}
