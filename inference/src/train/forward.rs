//! The differentiable forward pass of the LLaMA decoder with LoRA deltas, over a padded batch,
//! and the masked next-token cross-entropy.
//!
//! It computes what provdb's inference forward (`llama/forward.rs`) computes, in candle ops
//! that all have a backward: RMSNorm → Q/K/V (+ `s·(x·Aᵀ)·Bᵀ`) → RoPE on adjacent pairs with
//! the same angles (`position · base^(−2i/head_dim)` in f32) → grouped-query attention under a
//! causal mask → output projection → residual → RMSNorm → SwiGLU → residual → final RMSNorm →
//! head. candle's fused `softmax_last_dim`, `rms_norm` and `rope` have no backward, so this
//! composes them from elementary ops; the frozen matrices go through
//! [`frozen_product`](super::base::frozen_product).
//!
//! Padding is on the right, so the causal mask alone keeps every real token from seeing a pad;
//! pads only ever produce rows that the loss does not select. The head runs only on the rows
//! that carry loss.

use candle_core::{D, Device, Tensor};

use super::base::{BaseProduct, FrozenBase, frozen_product};
use super::data::Batch;
use super::factors::LoraFactors;
use crate::llama::LlamaConfig;

/// The pieces a forward pass reads.
pub(crate) struct Forward<'a> {
    pub(crate) config: &'a LlamaConfig,
    pub(crate) base: &'a FrozenBase,
    pub(crate) factors: &'a LoraFactors,
    pub(crate) product: BaseProduct,
}

fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inverse = (mean_square + f64::from(eps))?.sqrt()?.recip()?;
    x.broadcast_mul(&inverse)?.broadcast_mul(weight)
}

/// Softmax over the last dimension from elementary ops (the shift by the maximum is a
/// constant for the gradient, so it is detached).
fn softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let exp = x.broadcast_sub(&max)?.exp()?;
    let total = exp.sum_keepdim(D::Minus1)?;
    exp.broadcast_div(&total)
}

/// `cos` and `sin` of every rotary pair at positions `0..length`, shaped to broadcast over
/// `[rows, length, heads, head_dim / 2, 1]`; the same f32 arithmetic as inference.
fn rotary_tables(config: &LlamaConfig, length: usize) -> candle_core::Result<(Tensor, Tensor)> {
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
    let shape = (1, length, 1, half, 1);
    Ok((
        Tensor::from_vec(cos, shape, &Device::Cpu)?,
        Tensor::from_vec(sin, shape, &Device::Cpu)?,
    ))
}

/// `0` where a position may attend (`key ≤ query`), `−∞` above the diagonal.
fn causal_mask(length: usize) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..length * length)
        .map(|i| {
            if i % length > i / length {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(mask, (length, length), &Device::Cpu)
}

/// The state shared by every layer of one pass.
struct Pass {
    rows: usize,
    length: usize,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
}

impl Forward<'_> {
    /// `x·Wᵀ` plus the LoRA delta of `module` of `layer` when it is targeted.
    fn linear(&self, x: &Tensor, layer: usize, module: usize) -> candle_core::Result<Tensor> {
        let weight = &self.base.layers[layer].linear[module];
        let base = frozen_product(x, weight, self.product)?;
        let Some(factor) = self.factors.get(layer, module) else {
            return Ok(base);
        };
        let delta = x
            .matmul(&factor.a.as_tensor().t()?)?
            .matmul(&factor.b.as_tensor().t()?)?;
        base + delta.affine(f64::from(self.factors.scale), 0.0)?
    }

    /// Rotates adjacent pairs of every head: `[rows·length, heads·head_dim]` in,
    /// `[rows, heads, length, head_dim]` out.
    fn rotate(&self, x: &Tensor, heads: usize, pass: &Pass) -> candle_core::Result<Tensor> {
        let (head_dim, half) = (self.config.head_dim(), self.config.head_dim() / 2);
        let x = x.reshape((pass.rows, pass.length, heads, half, 2))?;
        let (even, odd) = (x.narrow(4, 0, 1)?, x.narrow(4, 1, 1)?);
        let rotated_even = (even.broadcast_mul(&pass.cos)? - odd.broadcast_mul(&pass.sin)?)?;
        let rotated_odd = (even.broadcast_mul(&pass.sin)? + odd.broadcast_mul(&pass.cos)?)?;
        Tensor::cat(&[rotated_even, rotated_odd], 4)?
            .reshape((pass.rows, pass.length, heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Key/value heads repeated for their query-head group: `[rows, kv_heads, length, d]` to
    /// `[rows, heads, length, d]`, query head `h` reading key/value head `h / group`.
    fn repeat_kv(&self, x: Tensor, pass: &Pass) -> candle_core::Result<Tensor> {
        let config = self.config;
        let group = config.heads / config.kv_heads;
        if group == 1 {
            return Ok(x);
        }
        let shape = (
            pass.rows,
            config.kv_heads,
            group,
            pass.length,
            config.head_dim(),
        );
        x.unsqueeze(2)?.broadcast_as(shape)?.contiguous()?.reshape((
            pass.rows,
            config.heads,
            pass.length,
            config.head_dim(),
        ))
    }

    fn attention(&self, x: &Tensor, layer: usize, pass: &Pass) -> candle_core::Result<Tensor> {
        let config = self.config;
        let normed = rms_norm(x, &self.base.layers[layer].attention_norm, config.rms_eps)?;
        let query = self.rotate(&self.linear(&normed, layer, 0)?, config.heads, pass)?;
        let key = self.rotate(&self.linear(&normed, layer, 1)?, config.kv_heads, pass)?;
        let value = self
            .linear(&normed, layer, 2)?
            .reshape((pass.rows, pass.length, config.kv_heads, config.head_dim()))?
            .transpose(1, 2)?
            .contiguous()?;
        let (key, value) = (self.repeat_kv(key, pass)?, self.repeat_kv(value, pass)?);
        let scale = 1.0 / (config.head_dim() as f64).sqrt();
        let scores = (query.matmul(&key.t()?)? * scale)?.broadcast_add(&pass.mask)?;
        let mixed = softmax(&scores)?.matmul(&value)?;
        let mixed = mixed
            .transpose(1, 2)?
            .reshape((pass.rows * pass.length, config.hidden))?;
        self.linear(&mixed, layer, 3)
    }

    fn feed_forward(&self, x: &Tensor, layer: usize) -> candle_core::Result<Tensor> {
        let normed = rms_norm(x, &self.base.layers[layer].ffn_norm, self.config.rms_eps)?;
        let gate = self.linear(&normed, layer, 4)?;
        let up = self.linear(&normed, layer, 5)?;
        self.linear(&(gate.silu()? * up)?, layer, 6)
    }

    /// The residual stream after the last block: `[rows·length, hidden]`.
    fn hidden(&self, tokens: &[u32], rows: usize, length: usize) -> candle_core::Result<Tensor> {
        let (cos, sin) = rotary_tables(self.config, length)?;
        let pass = Pass {
            rows,
            length,
            cos,
            sin,
            mask: causal_mask(length)?,
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
        let targets = Tensor::from_slice(&batch.targets, (count, 1), &Device::Cpu)?;
        let max = logits.max_keepdim(1)?.detach();
        let shifted = logits.broadcast_sub(&max)?;
        let log_total = shifted.exp()?.sum_keepdim(1)?.log()?;
        let target_logit = shifted.gather(&targets, 1)?;
        (log_total - target_logit)?.sum_all()
    }

    /// Next-token logits after every position of one sequence: `[tokens, vocab]`.
    pub(crate) fn logits(&self, tokens: &[u32]) -> candle_core::Result<Tensor> {
        let hidden = self.hidden(tokens, 1, tokens.len())?;
        self.head(&hidden)
    }
}
