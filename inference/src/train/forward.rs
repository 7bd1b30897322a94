//! The differentiable forward pass of the LLaMA decoder with LoRA deltas, over a padded batch,
//! and the masked next-token cross-entropy.
//!
//! It computes what provdb's inference forward (`llama/forward.rs`) computes: RMSNorm → Q/K/V
//! (+ `s·(x·Aᵀ)·Bᵀ`) → RoPE on adjacent pairs with the same angles (`position ·
//! base^(−2i/head_dim)` in f32) → grouped-query attention under a causal mask → output
//! projection → residual → RMSNorm → SwiGLU → residual → final RMSNorm → head. RMSNorm, RoPE,
//! the causal softmax, SwiGLU and the cross-entropy are fused ops with their own backward
//! ([`super::ops`]); the products are candle matmuls, the frozen ones through
//! [`frozen_product`](super::base::frozen_product). Grouped-query attention multiplies each
//! key/value head with its group's query heads stacked (`[group·length, head_dim]`), so keys
//! and values are never repeated.
//!
//! Padding is on the right, so the causal mask alone keeps every real token from seeing a pad;
//! pads only ever produce rows that the loss does not select. The head runs only on the rows
//! that carry loss.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::base::{BaseProduct, FrozenBase, frozen_product};
use super::data::Batch;
use super::factors::LoraFactors;
use super::influence::Probes;
use super::ops::{CausalSoftmax, CrossEntropy, RmsNorm, Rope, SwiGlu};
use crate::llama::LlamaConfig;

/// The pieces a forward pass reads.
pub(crate) struct Forward<'a> {
    pub(crate) config: &'a LlamaConfig,
    pub(crate) base: &'a FrozenBase,
    pub(crate) factors: &'a LoraFactors,
    pub(crate) product: BaseProduct,
    /// When set, every LoRA delta is probed for per-example gradients ([`super::influence`]).
    pub(crate) probes: Option<&'a Probes>,
}

fn rms_norm(x: &Tensor, weight: &Arc<[f32]>, eps: f32) -> candle_core::Result<Tensor> {
    x.apply_op1(RmsNorm {
        weight: Arc::clone(weight),
        eps,
    })
}

/// `cos` and `sin` of every rotary pair at positions `0..length` (`[length, head_dim / 2]`);
/// the same f32 arithmetic as inference.
fn rotary_tables(config: &LlamaConfig, length: usize) -> (Arc<[f32]>, Arc<[f32]>) {
    let (head_dim, half) = (config.head_dim(), config.head_dim() / 2);
    let mut cos = Vec::with_capacity(length * half);
    let mut sin = Vec::with_capacity(length * half);
    for position in 0..length {
        for i in 0..half {
            let frequency = config.rope_base.powf(-2.0 * i as f32 / head_dim as f32);
            let angle = position as f32 * frequency;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos.into(), sin.into())
}

/// The state shared by every layer of one pass.
struct Pass {
    rows: usize,
    length: usize,
    cos: Arc<[f32]>,
    sin: Arc<[f32]>,
}

impl Forward<'_> {
    /// `x·Wᵀ` plus the LoRA delta of `module` of `layer` when it is targeted.
    fn linear(&self, x: &Tensor, layer: usize, module: usize) -> candle_core::Result<Tensor> {
        let weight = &self.base.layers[layer].linear[module];
        let base = frozen_product(x, weight, self.product)?;
        let Some(factor) = self.factors.get(layer, module) else {
            return Ok(base);
        };
        if let (Some(probes), Some(index)) = (self.probes, self.factors.index(layer, module)) {
            let (delta, zero) = probes.delta(
                index,
                x,
                factor.a.as_tensor(),
                factor.b.as_tensor(),
                self.factors.scale,
            )?;
            return (base + delta)? + zero;
        }
        // The scale goes on the `rank`-wide product, the cheapest place for it.
        let delta = x
            .matmul(&factor.a.as_tensor().t()?)?
            .affine(f64::from(self.factors.scale), 0.0)?
            .matmul(&factor.b.as_tensor().t()?)?;
        base + delta
    }

    /// Rotates adjacent pairs of every head: `[rows·length, heads·head_dim]` in,
    /// `[rows, heads, length, head_dim]` out.
    fn rotate(&self, x: &Tensor, heads: usize, pass: &Pass) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1(Rope {
            cos: Arc::clone(&pass.cos),
            sin: Arc::clone(&pass.sin),
            rows: pass.rows,
            length: pass.length,
            heads,
            head_dim: self.config.head_dim(),
        })
    }

    fn attention(&self, x: &Tensor, layer: usize, pass: &Pass) -> candle_core::Result<Tensor> {
        let config = self.config;
        let (head_dim, kv_heads) = (config.head_dim(), config.kv_heads);
        let group = config.heads / kv_heads;
        let normed = rms_norm(x, &self.base.layers[layer].attention_norm, config.rms_eps)?;
        // Query head `h` reads key/value head `h / group`: the group's query heads are
        // adjacent, so `[rows, kv_heads, group·length, head_dim]` is the same memory.
        let query = self
            .rotate(&self.linear(&normed, layer, 0)?, config.heads, pass)?
            .reshape((pass.rows, kv_heads, group * pass.length, head_dim))?;
        let key = self.rotate(&self.linear(&normed, layer, 1)?, kv_heads, pass)?;
        let value = self
            .linear(&normed, layer, 2)?
            .reshape((pass.rows, pass.length, kv_heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()?;
        let scores = query.matmul(&key.t()?)?;
        let weights = scores.apply_op1(CausalSoftmax {
            scale: 1.0 / (head_dim as f32).sqrt(),
            length: pass.length,
        })?;
        let mixed = weights
            .matmul(&value)?
            .reshape((pass.rows, config.heads, pass.length, head_dim))?
            .transpose(1, 2)?
            .reshape((pass.rows * pass.length, config.hidden))?;
        self.linear(&mixed, layer, 3)
    }

    fn feed_forward(&self, x: &Tensor, layer: usize) -> candle_core::Result<Tensor> {
        let normed = rms_norm(x, &self.base.layers[layer].ffn_norm, self.config.rms_eps)?;
        let gate = self.linear(&normed, layer, 4)?;
        let up = self.linear(&normed, layer, 5)?;
        self.linear(&gate.apply_op2(&up, SwiGlu)?, layer, 6)
    }

    /// The residual stream after the last block: `[rows·length, hidden]`.
    fn hidden(&self, tokens: &[u32], rows: usize, length: usize) -> candle_core::Result<Tensor> {
        let (cos, sin) = rotary_tables(self.config, length);
        let pass = Pass {
            rows,
            length,
            cos,
            sin,
        };
        let mut x = self.base.embed(tokens)?;
        for layer in 0..self.config.layers {
            x = (&x + self.attention(&x, layer, &pass)?)?;
            x = (&x + self.feed_forward(&x, layer)?)?;
        }
        Ok(x)
    }

    /// Logits of the given rows of the residual stream.
    fn head(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let normed = rms_norm(hidden, &self.base.output_norm, self.config.rms_eps)?;
        frozen_product(&normed, &self.base.head, self.product)
    }

    /// The sum over the batch's loss positions of `−log p(target)`: a scalar.
    pub(crate) fn loss_sum(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let hidden = self.hidden(&batch.tokens, batch.rows, batch.length)?;
        let count = batch.loss_positions.len();
        let positions = Tensor::from_slice(&batch.loss_positions, count, &Device::Cpu)?;
        let logits = self.head(&hidden.index_select(&positions, 0)?)?;
        logits
            .apply_op1(CrossEntropy {
                targets: batch.targets.as_slice().into(),
            })?
            .sum_all()
    }

    /// Next-token logits after every position of one sequence: `[tokens, vocab]`.
    pub(crate) fn logits(&self, tokens: &[u32]) -> candle_core::Result<Tensor> {
        let hidden = self.hidden(tokens, 1, tokens.len())?;
        self.head(&hidden)
    }
}
