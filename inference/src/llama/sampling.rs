//! Choosing the next token from logits: greedy (argmax, first on ties) or seeded sampling with
//! temperature and top-p (candle-transformers' `LogitsProcessor`).

use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;

use crate::error::{InferenceError, Result};

/// How tokens are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// At most this many new tokens.
    pub max_tokens: usize,
    /// 0 (or less) is greedy.
    pub temperature: f64,
    /// Nucleus sampling threshold (1.0: off).
    pub top_p: f64,
    /// Seed of the sampler: the same seed, prompt and model give the same tokens.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 42,
        }
    }
}

impl SamplingParams {
    /// Checks the ranges: temperature ≥ 0, top-p in (0, 1].
    pub fn validate(&self) -> Result<()> {
        let valid = (0.0..).contains(&self.temperature) && self.top_p > 0.0 && self.top_p <= 1.0;
        if !valid {
            return Err(InferenceError::Invalid(format!(
                "temperature must be >= 0 and top_p in (0, 1], got {} and {}",
                self.temperature, self.top_p
            )));
        }
        Ok(())
    }
}

/// The sampler of one sequence.
pub struct Sampler {
    greedy: bool,
    processor: LogitsProcessor,
}

impl Sampler {
    /// A sampler for `params`.
    pub fn new(params: &SamplingParams) -> Self {
        let temperature = (params.temperature > 0.0).then_some(params.temperature);
        let top_p = (params.top_p < 1.0).then_some(params.top_p);
        Self {
            greedy: temperature.is_none(),
            processor: LogitsProcessor::new(params.seed, temperature, top_p),
        }
    }

    /// The next token.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        if self.greedy {
            return Ok(argmax(logits));
        }
        let tensor = Tensor::new(logits, &Device::Cpu)
            .map_err(|e| InferenceError::Invalid(format!("cannot sample: {e}")))?;
        self.processor
            .sample(&tensor)
            .map_err(|e| InferenceError::Invalid(format!("cannot sample: {e}")))
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &value) in logits.iter().enumerate() {
        if value > logits[best] {
            best = i;
        }
    }
    best as u32
}
