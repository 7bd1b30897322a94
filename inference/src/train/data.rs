//! Training data: [`Example`]s (prompt tokens, response tokens), the held-out split, the order
//! of micro-batches in every epoch, and padded batches.
//!
//! Invariants: the loss covers exactly the positions whose next token is a response token (a
//! prompt token is never a target, padding never is); the split and every epoch's order are
//! pure functions of the seed and the number of examples, so a run resumed at step `s` sees
//! the micro-batches an uninterrupted run would.

use super::config::TrainingConfig;
use super::rng::{SplitMix64, Stream};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaModel;

/// One training example: the model reads `prompt` then `response` and is trained to predict
/// every response token from what precedes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Context tokens: read, never predicted.
    pub prompt: Vec<u32>,
    /// Tokens the loss is computed on.
    pub response: Vec<u32>,
}

impl Example {
    /// An example from token ids.
    pub fn new(prompt: Vec<u32>, response: Vec<u32>) -> Self {
        Self { prompt, response }
    }

    /// A one-turn chat in the model's own template: the user's message and the start of the
    /// assistant's turn are the prompt; the answer and the end-of-turn token the response (so
    /// the adapter learns to stop).
    pub fn chat(model: &LlamaModel, user: &str, assistant: &str) -> Result<Self> {
        let prompt = model.encode(&model.chat_prompt(user))?;
        // The answer is outside text too: its markers must not become control tokens.
        let mut response = model.encode(&crate::llama::neutralize(assistant))?;
        response.extend(model.end_of_turn().first());
        Ok(Self { prompt, response })
    }

    /// Instruction and response as plain text, concatenated without a template.
    pub fn instruction(model: &LlamaModel, instruction: &str, response: &str) -> Result<Self> {
        Ok(Self {
            prompt: model.encode(instruction)?,
            response: model.encode(response)?,
        })
    }

    /// Plain text to continue: every token after the first is a target.
    pub fn completion(model: &LlamaModel, text: &str) -> Result<Self> {
        Ok(Self {
            prompt: Vec::new(),
            response: model.encode(text)?,
        })
    }

    /// Tokens the model reads.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.response.len()
    }

    /// True when it has no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions whose next token carries loss: one per response token, less the first when
    /// there is no prompt to predict it from.
    pub fn loss_tokens(&self) -> usize {
        if self.prompt.is_empty() {
            self.response.len().saturating_sub(1)
        } else {
            self.response.len()
        }
    }

    fn token(&self, position: usize) -> u32 {
        match position.checked_sub(self.prompt.len()) {
            None => self.prompt[position],
            Some(offset) => self.response[offset],
        }
    }
}

/// Refuses examples the run cannot train on, naming the first bad one.
pub(crate) fn validate_examples(
    examples: &[Example],
    config: &TrainingConfig,
    context_length: usize,
    vocab: usize,
) -> Result<()> {
    if examples.is_empty() {
        return Err(InferenceError::Invalid(
            "the dataset is empty: at least one example is needed".into(),
        ));
    }
    for (index, example) in examples.iter().enumerate() {
        let length = example.len();
        if length > context_length {
            return Err(InferenceError::Invalid(format!(
                "example {index} has {length} tokens, more than the model's context of \
                 {context_length}"
            )));
        }
        if length > config.max_length {
            return Err(InferenceError::Invalid(format!(
                "example {index} has {length} tokens, more than max length {} (raise it or \
                 shorten the example)",
                config.max_length
            )));
        }
        if example.loss_tokens() == 0 {
            return Err(InferenceError::Invalid(format!(
                "example {index} has no response token to learn (an empty response, or a \
                 one-token completion)"
            )));
        }
        let tokens = example.prompt.iter().chain(&example.response);
        if let Some(bad) = tokens.copied().find(|&t| t as usize >= vocab) {
            return Err(InferenceError::Invalid(format!(
                "example {index}: token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

/// The examples of a run, split.
pub(crate) struct Split {
    pub(crate) train: Vec<Example>,
    pub(crate) held_out: Vec<Example>,
    /// The input position of each training example.
    pub(crate) train_indices: Vec<usize>,
}

/// Splits `examples` into training and held out: `⌊n · fraction⌋` held out (at least one when
/// the fraction is positive), chosen by the seed; both keep the input order.
pub(crate) fn split(examples: Vec<Example>, config: &TrainingConfig) -> Result<Split> {
    let count = examples.len();
    let mut held = (count as f64 * f64::from(config.held_out_fraction)).floor() as usize;
    if config.held_out_fraction > 0.0 {
        held = held.max(1);
    }
    if held >= count {
        return Err(InferenceError::Invalid(format!(
            "{count} examples leave none to train on after holding out {held} (fraction {})",
            config.held_out_fraction
        )));
    }
    let mut order: Vec<usize> = (0..count).collect();
    SplitMix64::new(config.seed, Stream::Split).shuffle(&mut order);
    let mut is_held = vec![false; count];
    order[..held].iter().for_each(|&i| is_held[i] = true);
    let (mut train, mut held_out, mut train_indices) = (Vec::new(), Vec::new(), Vec::new());
    for (index, (example, held)) in examples.into_iter().zip(is_held).enumerate() {
        if held {
            held_out.push(example);
        } else {
            train.push(example);
            train_indices.push(index);
        }
    }
    Ok(Split {
        train,
        held_out,
        train_indices,
    })
}

/// Which training examples each optimiser step uses.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    examples: usize,
    batch_size: usize,
    grad_accumulation: usize,
    epochs: usize,
    seed: u64,
}

impl Plan {
    pub(crate) fn new(examples: usize, config: &TrainingConfig) -> Self {
        Self {
            examples,
            batch_size: config.batch_size,
            grad_accumulation: config.grad_accumulation,
            epochs: config.epochs,
            seed: config.seed,
        }
    }

    /// Optimiser steps per epoch (a step never spans two epochs; the last may be smaller).
    pub(crate) fn steps_per_epoch(&self) -> usize {
        self.examples
            .div_ceil(self.batch_size)
            .div_ceil(self.grad_accumulation)
    }

    /// Optimiser steps of the whole run.
    pub(crate) fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.epochs
    }

    /// The micro-batches (example indices) of optimiser step `step`.
    pub(crate) fn step(&self, step: usize) -> Vec<Vec<usize>> {
        let per_epoch = self.steps_per_epoch();
        let (epoch, within) = (step / per_epoch, step % per_epoch);
        let mut order: Vec<usize> = (0..self.examples).collect();
        SplitMix64::new(self.seed, Stream::Epoch(epoch as u64)).shuffle(&mut order);
        let per_step = self.batch_size * self.grad_accumulation;
        let end = ((within + 1) * per_step).min(self.examples);
        order[within * per_step..end]
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// A padded micro-batch: `rows × length` tokens (right-padded with token 0), and, as its loss
/// mask, the flat positions whose next token is a response token with that token.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    pub(crate) tokens: Vec<u32>,
    pub(crate) rows: usize,
    pub(crate) length: usize,
    /// Flat indices (`row * length + position`) that carry loss.
    pub(crate) loss_positions: Vec<u32>,
    /// The token each loss position must predict.
    pub(crate) targets: Vec<u32>,
    /// Tokens that are not padding.
    pub(crate) real_tokens: usize,
}

impl Batch {
    /// The loss positions of each row.
    pub(crate) fn row_loss_tokens(&self) -> Vec<usize> {
        let mut counts = vec![0; self.rows];
        for &position in &self.loss_positions {
            if let Some(count) = counts.get_mut(position as usize / self.length.max(1)) {
                *count += 1;
            }
        }
        counts
    }

    pub(crate) fn new(examples: &[&Example]) -> Self {
        let length = examples.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut batch = Self {
            tokens: vec![0; examples.len() * length],
            rows: examples.len(),
            length,
            loss_positions: Vec::new(),
            targets: Vec::new(),
            real_tokens: 0,
        };
        for (row, example) in examples.iter().enumerate() {
            let start = row * length;
            for position in 0..example.len() {
                batch.tokens[start + position] = example.token(position);
            }
            let first_target = example.prompt.len().max(1);
            for target in first_target..example.len() {
                batch.loss_positions.push((start + target - 1) as u32);
                batch.targets.push(example.token(target));
            }
            batch.real_tokens += example.len();
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_response_tokens_are_targets() {
        let chat = Example::new(vec![10, 11], vec![12, 13]);
        let completion = Example::new(vec![], vec![20, 21, 22]);
        let batch = Batch::new(&[&chat, &completion]);
        assert_eq!((batch.rows, batch.length), (2, 4));
        assert_eq!(batch.tokens, vec![10, 11, 12, 13, 20, 21, 22, 0]);
        assert_eq!(batch.loss_positions, vec![1, 2, 4, 5]);
        assert_eq!(batch.targets, vec![12, 13, 21, 22]);
        assert_eq!(
            batch.targets.len(),
            chat.loss_tokens() + completion.loss_tokens()
        );
        assert_eq!(batch.real_tokens, 7);
    }

    #[test]
    fn the_plan_covers_every_example_once_per_epoch() {
        let config = TrainingConfig {
            batch_size: 3,
            grad_accumulation: 2,
            epochs: 2,
            ..TrainingConfig::default()
        };
        let plan = Plan::new(10, &config);
        assert_eq!(plan.steps_per_epoch(), 2);
        assert_eq!(plan.total_steps(), 4);
        for epoch in 0..2 {
            let mut seen: Vec<usize> = (0..2)
                .flat_map(|s| plan.step(epoch * 2 + s).concat())
                .collect();
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(plan.step(1).len(), 2, "micro-batches of 3 and 1");
        assert_ne!(plan.step(0), plan.step(2), "epochs are reshuffled");
    }

    #[test]
    fn the_split_holds_out_a_seeded_fraction() {
        let examples: Vec<Example> = (0..10).map(|i| Example::new(vec![i], vec![i])).collect();
        let config = TrainingConfig {
            held_out_fraction: 0.25,
            ..TrainingConfig::default()
        };
        let Split {
            train,
            held_out: held,
            train_indices,
        } = split(examples.clone(), &config).unwrap();
        assert_eq!((train.len(), held.len()), (8, 2));
        assert_eq!(train_indices.len(), 8);
        for (example, index) in train.iter().zip(&train_indices) {
            assert_eq!(example, &examples[*index]);
        }
        let again = split(examples.clone(), &config).unwrap();
        assert_eq!(again.held_out, held);
        let one = vec![examples[0].clone()];
        assert!(split(one, &config).is_err(), "nothing left to train on");
    }
}
