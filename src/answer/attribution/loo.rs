//! `loo` attribution (leave-one-out): how much each source raised the model's probability of
//! the answer it produced. The answer's tokens are scored (teacher-forced) after the prompt with
//! all sources and after each prompt with one source removed. Each variant starts from the
//! generation's cache of the prefix it shares with the full prompt (everything before the
//! removed source), so only the rest of its prompt is computed; all variants run together as
//! one ragged batch (one forward step for the prompt rests, one for the answer).
//! A source's weight is `max(0, log p(answer | all) - log p(answer | all but it))`, in
//! millionths of a nat. It needs the generation's own KV cache.

use provdb_inference::llama::{LlamaModel, LogitsWanted, Sequence, StepInput};

use super::{AttributionContext, AttributionMethod, Needs};
use crate::answer::prompt::PromptTokens;
use crate::error::{Error, Result};

/// Leave-one-out attribution over the generation's own cache.
pub(crate) struct LeaveOneOut;

impl AttributionMethod for LeaveOneOut {
    fn needs(&self) -> Needs {
        Needs {
            generation_cache: true,
        }
    }

    fn weights(&self, context: &AttributionContext<'_>) -> Result<Vec<u64>> {
        let generated = context.generation.ok_or_else(|| {
            Error::Internal("leave-one-out attribution needs the generation's own session".into())
        })?;
        loo_weights(
            context.model,
            generated,
            context.prompt,
            context.answer_tokens,
        )
    }
}

/// Leave-one-out weights: k+1 teacher-forced scorings of the answer, each starting from the
/// generation's cache (`generated`, which begins with the full prompt) of its shared prefix.
fn loo_weights(
    model: &LlamaModel,
    generated: &Sequence,
    parts: &PromptTokens,
    answer: &[u32],
) -> Result<Vec<u64>> {
    let prompt_len = parts.tokens(None).len();
    if generated.len() < prompt_len {
        return Err(Error::Internal(
            "the generation's cache does not hold its prompt".into(),
        ));
    }
    let last = parts
        .tail
        .last()
        .copied()
        .ok_or_else(|| Error::Internal("the prompt template has an empty tail".into()))?;
    let mut variants = vec![Variant {
        prefix: generated.prefix(prompt_len - 1),
        rest: vec![last],
    }];
    for index in 0..parts.lines.len() {
        variants.push(Variant {
            prefix: generated.prefix(parts.prefix_len(index)),
            rest: parts.rest_without(index),
        });
    }
    let log_probs = answer_log_probs(model, variants, answer)?;
    let with_all = log_probs[0];
    Ok(log_probs[1..]
        .iter()
        .map(|without| ((with_all - without).max(0.0) * 1e6) as u64)
        .collect())
}

/// One variant to score: a cached prefix, and the (non-empty) rest of its prompt.
pub struct Variant {
    /// The prompt's cached start.
    pub prefix: Sequence,
    /// The rest of the prompt.
    pub rest: Vec<u32>,
}

/// log p(`answer` | variant's prompt) for each variant, in one batch.
pub fn answer_log_probs(
    model: &LlamaModel,
    mut variants: Vec<Variant>,
    answer: &[u32],
) -> Result<Vec<f64>> {
    let failed = |e: provdb_inference::InferenceError| Error::Internal(e.to_string());
    if answer.is_empty() {
        return Ok(vec![0.0; variants.len()]);
    }
    if variants.iter().any(|v| v.rest.is_empty()) {
        return Err(Error::Internal(
            "a leave-one-out variant has no prompt tokens to score from".into(),
        ));
    }
    let longest = variants
        .iter()
        .map(|v| v.prefix.len() + v.rest.len())
        .max()
        .unwrap_or(0);
    let context = model.config().context_length;
    if longest + answer.len() > context {
        return Err(Error::Invalid(format!(
            "prompt ({longest} tokens) and answer ({} tokens) exceed the model's context of {context}",
            answer.len()
        )));
    }
    // Step 1: every prompt's rest, with the logits after its last token (predicting answer[0]).
    let mut inputs: Vec<StepInput<'_>> = variants
        .iter_mut()
        .map(|v| StepInput {
            sequence: &mut v.prefix,
            tokens: &v.rest,
            logits: LogitsWanted::Last,
        })
        .collect();
    let first = model.forward(&mut inputs).map_err(failed)?;
    drop(inputs);
    let mut totals: Vec<f64> = first
        .iter()
        .map(|logits| logits.last().map_or(0.0, |l| log_prob(l, answer[0])))
        .collect();
    // Step 2: the answer but its last token, with logits after each (predicting the next).
    let rest = &answer[..answer.len() - 1];
    if !rest.is_empty() {
        let mut inputs: Vec<StepInput<'_>> = variants
            .iter_mut()
            .map(|v| StepInput {
                sequence: &mut v.prefix,
                tokens: rest,
                logits: LogitsWanted::All,
            })
            .collect();
        let steps = model.forward(&mut inputs).map_err(failed)?;
        for (total, per_position) in totals.iter_mut().zip(steps) {
            for (logits, &next) in per_position.iter().zip(&answer[1..]) {
                *total += log_prob(logits, next);
            }
        }
    }
    Ok(totals)
}

/// log softmax(`logits`)[`token`], computed stably in f64.
fn log_prob(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let chosen = logits
        .get(token as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY) as f64;
    chosen - max - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::log_prob;

    #[test]
    fn log_prob_is_a_log_softmax() {
        let logits = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3).map(|t| log_prob(&logits, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(log_prob(&logits, 2) > log_prob(&logits, 0));
        assert_eq!(log_prob(&logits, 9), f64::NEG_INFINITY);
    }
}
