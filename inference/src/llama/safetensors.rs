//! Loading a LLaMA decoder from a Hugging Face folder: `config.json`, one or more
//! `*.safetensors` files (f32, f16 or bf16; kept as f32) and `tokenizer.json`.
//!
//! Hugging Face checkpoints rotate query/key halves (`rotate_half`), GGUF and provdb rotate
//! adjacent pairs; the query and key rows of each head are permuted at load exactly as
//! llama.cpp's converter does, so one forward pass serves both sources.

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use provdb_kernels::Matrix;

use super::config::LlamaConfig;
use super::weights::{LayerWeights, LlamaWeights};
use crate::error::{InferenceError, Result};

/// The `*.safetensors` files of a folder, sorted.
pub(crate) fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs_err::read_dir(dir).map_err(|e| InferenceError::BadModelFile {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(InferenceError::MissingFile {
            path: dir.join("model.safetensors"),
            what: "the model weights (*.safetensors)",
        });
    }
    Ok(files)
}

struct Reader<'a> {
    tensors: MmapedSafetensors,
    dir: &'a Path,
}

impl Reader<'_> {
    fn bad(&self, name: &str, reason: impl std::fmt::Display) -> InferenceError {
        InferenceError::BadModelFile {
            path: self.dir.to_path_buf(),
            reason: format!("tensor '{name}': {reason}"),
        }
    }

    fn floats(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let tensor = self
            .tensors
            .load(name, &Device::Cpu)
            .map_err(|e| self.bad(name, e))?;
        if tensor.dims() != dims {
            return Err(self.bad(
                name,
                format!("has shape {:?}, expected {dims:?}", tensor.dims()),
            ));
        }
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, e))
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let values = self.floats(name, &[rows, cols])?;
        Matrix::from_f32(rows, cols, values).map_err(|e| self.bad(name, e))
    }

    /// A query or key matrix with each head's rows reordered from halves to adjacent pairs.
    fn rotary_matrix(
        &self,
        name: &str,
        heads: usize,
        cols: usize,
        head_dim: usize,
    ) -> Result<Matrix> {
        let values = self.floats(name, &[heads * head_dim, cols])?;
        let half = head_dim / 2;
        let mut permuted = vec![0f32; values.len()];
        for head in 0..heads {
            for i in 0..half {
                for (pair, source) in [(0, i), (1, i + half)] {
                    let to = (head * head_dim + 2 * i + pair) * cols;
                    let from = (head * head_dim + source) * cols;
                    permuted[to..to + cols].copy_from_slice(&values[from..from + cols]);
                }
            }
        }
        Matrix::from_f32(heads * head_dim, cols, permuted).map_err(|e| self.bad(name, e))
    }
}

/// Reads every weight of a Hugging Face LLaMA folder.
pub(crate) fn load_weights(dir: &Path, config: &LlamaConfig, tied: bool) -> Result<LlamaWeights> {
    let files = safetensors_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; provdb does not modify model files, and
    // a file changed underneath by another process is outside what any loader can guard.
    let tensors =
        unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| InferenceError::BadModelFile {
            path: dir.to_path_buf(),
            reason: format!("not readable safetensors: {e}"),
        })?;
    let reader = Reader { tensors, dir };
    let (h, kv, ff, hd) = (
        config.hidden,
        config.kv_dim(),
        config.feed_forward,
        config.head_dim(),
    );
    let embeddings = reader.matrix("model.embed_tokens.weight", config.vocab, h)?;
    let output = if tied {
        None
    } else {
        Some(reader.matrix("lm_head.weight", config.vocab, h)?)
    };
    // `num_hidden_layers` is the file's word: a missing tensor ends the loop, not the memory.
    let mut layers = Vec::with_capacity(config.layers.min(1024));
    for layer in 0..config.layers {
        let p = format!("model.layers.{layer}");
        layers.push(LayerWeights {
            attention_norm: reader.floats(&format!("{p}.input_layernorm.weight"), &[h])?,
            query: reader.rotary_matrix(
                &format!("{p}.self_attn.q_proj.weight"),
                config.heads,
                h,
                hd,
            )?,
            key: reader.rotary_matrix(
                &format!("{p}.self_attn.k_proj.weight"),
                config.kv_heads,
                h,
                hd,
            )?,
            value: reader.matrix(&format!("{p}.self_attn.v_proj.weight"), kv, h)?,
            output: reader.matrix(&format!("{p}.self_attn.o_proj.weight"), h, h)?,
            ffn_norm: reader.floats(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
            gate: reader.matrix(&format!("{p}.mlp.gate_proj.weight"), ff, h)?,
            up: reader.matrix(&format!("{p}.mlp.up_proj.weight"), ff, h)?,
            down: reader.matrix(&format!("{p}.mlp.down_proj.weight"), h, ff)?,
        });
    }
    Ok(LlamaWeights {
        embeddings,
        layers,
        output_norm: reader.floats("model.norm.weight", &[h])?,
        output,
    })
}
