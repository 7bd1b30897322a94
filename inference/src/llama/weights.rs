//! The weights of a LLaMA decoder as provdb computes with them: matrices in the kernels'
//! formats (Q4_1 and Q8_0 as stored in GGUF; f32 for float checkpoints; anything else
//! requantized to Q8_0 at load) and norm vectors in f32. Shapes are checked at load against the
//! [`LlamaConfig`], so a forward pass never meets a mismatched matrix.

use provdb_kernels::Matrix;

use super::config::LlamaConfig;

/// One decoder block.
#[derive(Debug)]
pub(crate) struct LayerWeights {
    pub(crate) attention_norm: Vec<f32>,
    pub(crate) query: Matrix,
    pub(crate) key: Matrix,
    pub(crate) value: Matrix,
    pub(crate) output: Matrix,
    pub(crate) ffn_norm: Vec<f32>,
    pub(crate) gate: Matrix,
    pub(crate) up: Matrix,
    pub(crate) down: Matrix,
}

/// The whole model.
#[derive(Debug)]
pub(crate) struct LlamaWeights {
    pub(crate) embeddings: Matrix,
    pub(crate) layers: Vec<LayerWeights>,
    pub(crate) output_norm: Vec<f32>,
    /// `None`: the output head is the embedding matrix (tied).
    pub(crate) output: Option<Matrix>,
}

impl LlamaWeights {
    /// The output head.
    pub(crate) fn head(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.embeddings)
    }

    /// Bytes of all weights in memory.
    pub(crate) fn byte_size(&self) -> usize {
        let norms = |v: &Vec<f32>| v.len() * 4;
        let mut total = self.embeddings.byte_size()
            + norms(&self.output_norm)
            + self.output.as_ref().map_or(0, Matrix::byte_size);
        for layer in &self.layers {
            total += [
                &layer.query,
                &layer.key,
                &layer.value,
                &layer.output,
                &layer.gate,
                &layer.up,
                &layer.down,
            ]
            .iter()
            .map(|m| m.byte_size())
            .sum::<usize>()
                + norms(&layer.attention_norm)
                + norms(&layer.ffn_norm);
        }
        total
    }
}

/// The expected `[rows, cols]` of each matrix of a block, by its GGUF short name.
pub(crate) fn block_shapes(config: &LlamaConfig) -> [(&'static str, [usize; 2]); 7] {
    let (h, kv, ff) = (config.hidden, config.kv_dim(), config.feed_forward);
    [
        ("attn_q", [h, h]),
        ("attn_k", [kv, h]),
        ("attn_v", [kv, h]),
        ("attn_output", [h, h]),
        ("ffn_gate", [ff, h]),
        ("ffn_up", [ff, h]),
        ("ffn_down", [h, ff]),
    ]
}
