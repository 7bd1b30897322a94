//! [`Llama`]: one sequence over a shared [`LlamaModel`]. Cloning is cheap (the weights are
//! shared) and gives an independent session with its own KV cache.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use super::sampling::{Sampler, SamplingParams};
use super::{LlamaModel, LogitsWanted, Sequence, StepInput};
use crate::error::{InferenceError, Result};

/// A one-sequence session. Dereferences to its [`LlamaModel`] (tokenizer, prompt template).
#[derive(Clone)]
pub struct Llama {
    model: Arc<LlamaModel>,
    sequence: Sequence,
}

impl Deref for Llama {
    type Target = LlamaModel;

    fn deref(&self) -> &LlamaModel {
        &self.model
    }
}

/// Streams text: decodes all tokens so far and hands out only new, complete characters.
pub(crate) struct TextStream {
    printed: usize,
}

impl TextStream {
    pub(crate) fn new() -> Self {
        Self { printed: 0 }
    }

    /// The new text after `ids` (empty while a character is incomplete).
    pub(crate) fn next(&mut self, model: &LlamaModel, ids: &[u32]) -> Result<String> {
        let text = model
            .tokenizer()
            .decode(ids, true)
            .map_err(|e| InferenceError::Invalid(e.to_string()))?;
        if text.len() > self.printed && !text.ends_with('\u{fffd}') {
            let piece = text[self.printed..].to_string();
            self.printed = text.len();
            return Ok(piece);
        }
        Ok(String::new())
    }
}

impl Llama {
    /// Loads a model (see [`LlamaModel::load`]) and opens a session on it.
    pub fn load(path: &Path) -> Result<Self> {
        LlamaModel::load(path).map(Self::new)
    }

    /// A session on a loaded model.
    pub fn new(model: Arc<LlamaModel>) -> Self {
        Self {
            model,
            sequence: Sequence::new(),
        }
    }

    /// Runs every later sequence of this session with `adapters` (a fresh sequence: cached
    /// keys and values never cross adapters).
    pub fn set_adapters(&mut self, adapters: crate::lora::AdapterMix) {
        self.sequence = Sequence::with_adapters(adapters);
    }

    /// The shared model.
    pub fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    fn run(&mut self, tokens: &[u32], logits: LogitsWanted) -> Result<Vec<Vec<f32>>> {
        let mut inputs = [StepInput {
            sequence: &mut self.sequence,
            tokens,
            logits,
        }];
        let mut out = self.model.forward(&mut inputs)?;
        Ok(out.pop().unwrap_or_default())
    }

    fn last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.run(tokens, LogitsWanted::Last)?
            .pop()
            .ok_or_else(|| InferenceError::Invalid("empty prompt".into()))
    }

    /// The sequence's cache: after `generate`, the prompt and the generated tokens.
    pub fn sequence(&self) -> &Sequence {
        &self.sequence
    }

    /// Starts a fresh sequence with the whole prompt in one forward pass; returns the
    /// next-token logits after it.
    pub fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.sequence.clear();
        self.last(ids)
    }

    /// Feeds one more token at `position` of the current sequence; returns the next logits.
    pub fn decode_step(&mut self, id: u32, position: usize) -> Result<Vec<f32>> {
        if position != self.sequence.len() {
            return Err(InferenceError::Invalid(format!(
                "position {position} is not the sequence's next ({})",
                self.sequence.len()
            )));
        }
        self.last(&[id])
    }

    /// Next-token logits after each prefix of `ids` (a fresh sequence, one token per step).
    pub fn logits_per_position(&mut self, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.sequence.clear();
        ids.iter().map(|&id| self.last(&[id])).collect()
    }

    /// Next-token logits after each prefix of `ids` in one forward pass (a fresh sequence).
    pub fn score(&mut self, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.sequence.clear();
        self.run(ids, LogitsWanted::All)
    }

    /// Greedy continuation of `prompt` (a fresh sequence), at most `max_tokens`, stopping after
    /// an end-of-turn token (which is returned).
    pub fn greedy(&mut self, prompt: &[u32], max_tokens: usize) -> Result<Vec<u32>> {
        let params = SamplingParams {
            max_tokens,
            ..SamplingParams::default()
        };
        self.generate(prompt, params, &mut |_| true)
    }

    /// Generates a continuation of `prompt` (a fresh sequence), calling `on_text` with each
    /// piece of text as soon as its tokens decode to whole characters; stops after an
    /// end-of-turn token, at `max_tokens`, or when `on_text` returns false. Returns the ids.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: SamplingParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Vec<u32>> {
        params.validate()?;
        let context = self.model.config().context_length;
        if prompt.len() + params.max_tokens > context {
            return Err(InferenceError::Invalid(format!(
                "{} prompt tokens + {} new tokens exceed the model's context of {context}",
                prompt.len(),
                params.max_tokens
            )));
        }
        let mut sampler = Sampler::new(&params);
        let mut logits = self.prefill(prompt)?;
        let mut out: Vec<u32> = Vec::with_capacity(params.max_tokens);
        let mut text = TextStream::new();
        while out.len() < params.max_tokens {
            let next = sampler.sample(&logits)?;
            out.push(next);
            if self.model.end_of_turn().contains(&next) {
                break;
            }
            let piece = text.next(&self.model, &out)?;
            if !piece.is_empty() && !on_text(&piece) {
                break;
            }
            if out.len() < params.max_tokens {
                logits = self.last(&[next])?;
            }
        }
        Ok(out)
    }
}
