//! The forward pass over a ragged batch: several sequences, each with its own KV cache, each
//! contributing one or more new tokens (a prompt to prefill, or one token to decode) to the
//! same step. All new tokens of the step go through every weight matrix together (one
//! quantized matrix product per weight, [`provdb_kernels::matmul`]); attention is per sequence
//! against its own cache. A sequence's keys and values for the step are appended before
//! attention, and a token at position `p` attends to positions `0..=p` of its own sequence:
//! that is the causal mask, so a prompt of n tokens in one step gives the same logits as n
//! one-token steps.
//!
//! Layout: RMSNorm → Q/K/V → RoPE on adjacent pairs (GGUF's layout) → grouped-query attention
//! → output projection → residual → RMSNorm → SwiGLU → residual; final RMSNorm and the output
//! head only for the rows whose logits are asked for.
//!
//! Adapters: a [`Sequence`] is bound to an [`AdapterMix`] for life (so its keys and values are
//! never shared across adapters). After each base product, which runs once for all rows, each
//! sequence's adapters add their low-rank deltas to its rows only
//! ([`provdb_kernels::apply_low_rank`]); a step of base-model sequences does no adapter work.

use provdb_kernels::dot::kernels;
use provdb_kernels::{Activations, LowRankSegment, Matrix, apply_low_rank, matmul, matmul_many};
use rayon::prelude::*;

use super::config::LlamaConfig;
use super::weights::LlamaWeights;
use crate::error::{InferenceError, Result};
use crate::lora::{AdapterMix, Module};

/// One sequence's state: the adapters it runs with and its keys and values at every layer for
/// positions `0..len`.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
    adapters: AdapterMix,
}

impl Sequence {
    /// An empty sequence on the base model.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sequence running with `adapters`.
    pub fn with_adapters(adapters: AdapterMix) -> Self {
        Self {
            adapters,
            ..Self::default()
        }
    }

    /// The adapters it runs with (fixed for its life).
    pub fn adapters(&self) -> &AdapterMix {
        &self.adapters
    }

    /// Tokens already in the cache (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every token (keeps the memory for reuse).
    pub fn clear(&mut self) {
        self.keys.iter_mut().for_each(Vec::clear);
        self.values.iter_mut().for_each(Vec::clear);
        self.len = 0;
    }

    /// A new sequence holding the first `len` tokens of this one (a shared prompt prefix, to
    /// continue differently without recomputing it).
    pub fn prefix(&self, len: usize) -> Self {
        let len = len.min(self.len);
        let cut = |caches: &[Vec<f32>]| -> Vec<Vec<f32>> {
            caches
                .iter()
                .map(|cache| {
                    let per_token = cache.len() / self.len.max(1);
                    cache[..len * per_token].to_vec()
                })
                .collect()
        };
        Self {
            keys: cut(&self.keys),
            values: cut(&self.values),
            len,
            adapters: self.adapters.clone(),
        }
    }

    /// Bytes held by the cache.
    pub fn byte_size(&self) -> usize {
        self.keys
            .iter()
            .chain(&self.values)
            .map(|v| v.capacity() * 4)
            .sum()
    }
}

/// Which logits a request of a step wants back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsWanted {
    /// None (a prompt chunk whose continuation comes later).
    None,
    /// After the last new token only (prefill, decode).
    Last,
    /// After every new token (scoring a text, tests).
    All,
}

/// One sequence's part of a step.
pub struct StepInput<'a> {
    /// The sequence, extended by this step.
    pub sequence: &'a mut Sequence,
    /// Its new tokens, at positions `sequence.len()..`.
    pub tokens: &'a [u32],
    /// Which logits to return.
    pub logits: LogitsWanted,
}

/// Where each row of the step comes from.
#[derive(Clone, Copy)]
struct Row {
    input: usize,
    position: usize,
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

fn rms_norm_rows(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (row, o) in x
        .chunks_exact(weight.len())
        .zip(out.chunks_exact_mut(weight.len()))
    {
        rms_norm(row, weight, eps, o);
    }
    out
}

fn product(weights: &Matrix, x: &Activations<'_>) -> Vec<f32> {
    let mut out = vec![0f32; x.rows() * weights.rows()];
    matmul(weights, x, &mut out);
    out
}

/// Cosines and sines of every rotary pair at each row's position: `[row][pair]`.
fn rotary_table(rows: &[Row], config: &LlamaConfig) -> (Vec<f32>, Vec<f32>) {
    let half = config.head_dim() / 2;
    let mut cos = Vec::with_capacity(rows.len() * half);
    let mut sin = Vec::with_capacity(rows.len() * half);
    for row in rows {
        for i in 0..half {
            let frequency = config
                .rope_base
                .powf(-2.0 * i as f32 / config.head_dim() as f32);
            let angle = row.position as f32 * frequency;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

/// Rotates adjacent pairs of every head of every row.
fn rotate(x: &mut [f32], width: usize, head_dim: usize, cos: &[f32], sin: &[f32]) {
    let half = head_dim / 2;
    for (r, row) in x.chunks_exact_mut(width).enumerate() {
        let (c, s) = (
            &cos[r * half..(r + 1) * half],
            &sin[r * half..(r + 1) * half],
        );
        for head in row.chunks_exact_mut(head_dim) {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (a, b) = (pair[0], pair[1]);
                pair[0] = a * c[i] - b * s[i];
                pair[1] = a * s[i] + b * c[i];
            }
        }
    }
}

/// Attention of one row (all its heads) against its sequence's cache up to `position`.
fn attend(
    config: &LlamaConfig,
    query: &[f32],
    keys: &[f32],
    values: &[f32],
    position: usize,
    out: &mut [f32],
) {
    let (head_dim, kv_dim) = (config.head_dim(), config.kv_dim());
    let group = config.heads / config.kv_heads;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let dot = kernels().f32;
    let mut scores = vec![0f32; position + 1];
    for (head, (q, o)) in query
        .chunks_exact(head_dim)
        .zip(out.chunks_exact_mut(head_dim))
        .enumerate()
    {
        let offset = (head / group) * head_dim;
        let mut max = f32::NEG_INFINITY;
        for (t, score) in scores.iter_mut().enumerate() {
            let k = &keys[t * kv_dim + offset..t * kv_dim + offset + head_dim];
            *score = dot(q, k) * scale;
            max = max.max(*score);
        }
        let mut total = 0f32;
        for score in &mut scores {
            *score = (*score - max).exp();
            total += *score;
        }
        o.fill(0.0);
        for (t, &weight) in scores.iter().enumerate() {
            let v = &values[t * kv_dim + offset..t * kv_dim + offset + head_dim];
            let weight = weight / total;
            for (acc, &x) in o.iter_mut().zip(v) {
                *acc += weight * x;
            }
        }
    }
}

/// Runs one step; returns, per input, the logits it asked for (one vector per row).
pub(crate) fn forward(
    config: &LlamaConfig,
    weights: &LlamaWeights,
    inputs: &mut [StepInput<'_>],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut rows = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let start = input.sequence.len;
        if start + input.tokens.len() > config.context_length {
            return Err(InferenceError::Invalid(format!(
                "{} tokens exceed the model's context of {}",
                start + input.tokens.len(),
                config.context_length
            )));
        }
        if let Some(&bad) = input.tokens.iter().find(|&&t| t as usize >= config.vocab) {
            return Err(InferenceError::Invalid(format!(
                "token id {bad} is outside the vocabulary of {}",
                config.vocab
            )));
        }
        if let Some((adapter, _)) = input
            .sequence
            .adapters
            .adapters()
            .iter()
            .find(|(a, _)| !a.fits(config))
        {
            return Err(InferenceError::Invalid(format!(
                "adapter {} was loaded for a base of another shape",
                adapter.id()
            )));
        }
        rows.extend((0..input.tokens.len()).map(|i| Row {
            input: index,
            position: start + i,
        }));
    }
    let (hidden, kv_dim) = (config.hidden, config.kv_dim());
    let adapters = Adapters::of(inputs);
    let mut x = vec![0f32; rows.len() * hidden];
    let tokens = inputs.iter().flat_map(|input| input.tokens.iter());
    for (row, &token) in x.chunks_exact_mut(hidden).zip(tokens) {
        weights.embeddings.row_f32(token as usize, row);
    }
    for input in inputs.iter_mut() {
        let sequence = &mut *input.sequence;
        sequence.keys.resize_with(config.layers, Vec::new);
        sequence.values.resize_with(config.layers, Vec::new);
    }
    let (cos, sin) = rotary_table(&rows, config);
    for (layer, w) in weights.layers.iter().enumerate() {
        let normed = rms_norm_rows(&x, &w.attention_norm, config.rms_eps);
        let activations = Activations::new(&normed, hidden);
        let mut query = vec![0f32; rows.len() * hidden];
        let mut key = vec![0f32; rows.len() * kv_dim];
        let mut value = vec![0f32; rows.len() * kv_dim];
        matmul_many(
            &mut [
                (&w.query, &mut query),
                (&w.key, &mut key),
                (&w.value, &mut value),
            ],
            &activations,
        );
        adapters.add(layer, Module::Query, &normed, hidden, &mut query, hidden);
        adapters.add(layer, Module::Key, &normed, hidden, &mut key, kv_dim);
        adapters.add(layer, Module::Value, &normed, hidden, &mut value, kv_dim);
        rotate(&mut query, hidden, config.head_dim(), &cos, &sin);
        rotate(&mut key, kv_dim, config.head_dim(), &cos, &sin);
        for (r, row) in rows.iter().enumerate() {
            let sequence = &mut *inputs[row.input].sequence;
            sequence.keys[layer].extend_from_slice(&key[r * kv_dim..(r + 1) * kv_dim]);
            sequence.values[layer].extend_from_slice(&value[r * kv_dim..(r + 1) * kv_dim]);
        }
        let mut attention = vec![0f32; rows.len() * hidden];
        let caches: Vec<(&[f32], &[f32])> = inputs
            .iter()
            .map(|i| {
                (
                    i.sequence.keys[layer].as_slice(),
                    i.sequence.values[layer].as_slice(),
                )
            })
            .collect();
        let task = |(r, out): (usize, &mut [f32])| {
            let row = rows[r];
            let (keys, values) = caches[row.input];
            let q = &query[r * hidden..(r + 1) * hidden];
            attend(config, q, keys, values, row.position, out);
        };
        if rows.len() > 1 && rayon::current_num_threads() > 1 {
            attention.par_chunks_mut(hidden).enumerate().for_each(task);
        } else {
            attention.chunks_mut(hidden).enumerate().for_each(task);
        }
        let mut projected = product(&w.output, &Activations::new(&attention, hidden));
        adapters.add(
            layer,
            Module::Output,
            &attention,
            hidden,
            &mut projected,
            hidden,
        );
        x.iter_mut().zip(&projected).for_each(|(a, b)| *a += b);
        let normed = rms_norm_rows(&x, &w.ffn_norm, config.rms_eps);
        let activations = Activations::new(&normed, hidden);
        let mut gate = vec![0f32; rows.len() * config.feed_forward];
        let mut up = vec![0f32; rows.len() * config.feed_forward];
        matmul_many(&mut [(&w.gate, &mut gate), (&w.up, &mut up)], &activations);
        let ff = config.feed_forward;
        adapters.add(layer, Module::Gate, &normed, hidden, &mut gate, ff);
        adapters.add(layer, Module::Up, &normed, hidden, &mut up, ff);
        for (g, u) in gate.iter_mut().zip(&up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        let mut down = product(&w.down, &Activations::new(&gate, ff));
        adapters.add(layer, Module::Down, &gate, ff, &mut down, hidden);
        x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
    }
    for input in inputs.iter_mut() {
        input.sequence.len += input.tokens.len();
    }
    logits(config, weights, inputs, &rows, &x)
}

/// The adapter mixes of a step's inputs and the rows each input owns.
struct Adapters {
    /// `(rows, mix)` of every input that runs with adapters.
    segments: Vec<(std::ops::Range<usize>, AdapterMix)>,
}

impl Adapters {
    fn of(inputs: &[StepInput<'_>]) -> Self {
        let mut segments = Vec::new();
        let mut start = 0;
        for input in inputs {
            let end = start + input.tokens.len();
            if !input.sequence.adapters.is_base() {
                segments.push((start..end, input.sequence.adapters.clone()));
            }
            start = end;
        }
        Self { segments }
    }

    /// Adds every adapter's delta for `module` of `layer` to its rows of `out`.
    fn add(
        &self,
        layer: usize,
        module: Module,
        x: &[f32],
        input: usize,
        out: &mut [f32],
        output: usize,
    ) {
        if self.segments.is_empty() {
            return;
        }
        let mut segments = Vec::new();
        for (rows, mix) in &self.segments {
            for (adapter, weight) in mix.adapters() {
                if let Some((factors, scale)) = adapter.factors(layer, module) {
                    segments.push(LowRankSegment {
                        rows: rows.clone(),
                        factors,
                        scale: scale * weight,
                    });
                }
            }
        }
        apply_low_rank(x, input, out, output, &segments);
    }
}

/// The output head over the rows whose logits are wanted, split back per input.
fn logits(
    config: &LlamaConfig,
    weights: &LlamaWeights,
    inputs: &[StepInput<'_>],
    rows: &[Row],
    x: &[f32],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let hidden = config.hidden;
    let mut wanted = Vec::new();
    let mut normed = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let input = &inputs[row.input];
        let last = row.position + 1 == input.sequence.len;
        let keep = match input.logits {
            LogitsWanted::None => false,
            LogitsWanted::Last => last,
            LogitsWanted::All => true,
        };
        if keep {
            wanted.push(row.input);
            let mut out = vec![0f32; hidden];
            rms_norm(
                &x[r * hidden..(r + 1) * hidden],
                &weights.output_norm,
                config.rms_eps,
                &mut out,
            );
            normed.extend(out);
        }
    }
    let mut per_input: Vec<Vec<Vec<f32>>> = inputs.iter().map(|_| Vec::new()).collect();
    if wanted.is_empty() {
        return Ok(per_input);
    }
    let all = product(weights.head(), &Activations::new(&normed, hidden));
    for (input, row) in wanted.into_iter().zip(all.chunks_exact(config.vocab)) {
        per_input[input].push(row.to_vec());
    }
    Ok(per_input)
}
