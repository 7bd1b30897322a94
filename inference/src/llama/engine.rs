//! [`Generator`]: continuous batching of many generation requests over one shared model.
//!
//! Requests are queued; one worker thread runs the decoding loop. Each step takes every active
//! sequence's next token plus the whole prompts of newly admitted requests (up to
//! `max_batch` sequences) through one forward pass, so the weights are read once per step for
//! all of them. Each request gets a [`TokenStream`] (an iterator over [`GenerationEvent`]s)
//! that yields text as it is produced and ends with `Done`; dropping the stream cancels the
//! request at the next step. Requests are validated when submitted (sampling ranges, empty
//! prompt, context length), so one bad request never fails the others.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::sampling::{Sampler, SamplingParams};
use super::session::TextStream;
use super::{LlamaModel, LogitsWanted, Sequence, StepInput};
use crate::error::{InferenceError, Result};
use crate::lora::AdapterMix;

/// One request: a tokenized prompt and how to sample.
#[derive(Clone, Debug)]
pub struct GenerationRequest {
    /// Prompt token ids (e.g. from [`LlamaModel::encode`] of a chat prompt).
    pub prompt: Vec<u32>,
    /// Sampling.
    pub params: SamplingParams,
    /// Adapters to run with (empty: the base model).
    pub adapters: AdapterMix,
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn.
    EndOfTurn,
    /// `max_tokens` were produced.
    MaxTokens,
}

/// What a stream yields.
#[derive(Clone, Debug, PartialEq)]
pub enum GenerationEvent {
    /// A new token and the text it completes (empty while a character is incomplete; the
    /// end-of-turn token has no text).
    Token {
        /// The token id.
        id: u32,
        /// New text.
        text: String,
    },
    /// The last event of a successful generation.
    Done {
        /// Every generated id.
        tokens: Vec<u32>,
        /// Why it ended.
        reason: FinishReason,
    },
    /// The generation failed (a bug in provdb: requests are validated on submission).
    Failed(String),
}

/// The events of one request, as they are produced. Dropping it cancels the request.
pub struct TokenStream {
    events: Receiver<GenerationEvent>,
}

impl Iterator for TokenStream {
    type Item = GenerationEvent;

    fn next(&mut self) -> Option<GenerationEvent> {
        self.events.recv().ok()
    }
}

impl TokenStream {
    /// Waits for the end: the generated ids and why they ended.
    pub fn finish(self) -> Result<(Vec<u32>, FinishReason)> {
        for event in self {
            match event {
                GenerationEvent::Done { tokens, reason } => return Ok((tokens, reason)),
                GenerationEvent::Failed(message) => return Err(InferenceError::Invalid(message)),
                GenerationEvent::Token { .. } => {}
            }
        }
        Err(InferenceError::Invalid(
            "the generator stopped before the request finished".into(),
        ))
    }
}

/// How the generator batches and where it computes.
#[derive(Clone, Copy, Debug)]
pub struct GeneratorOptions {
    /// Most sequences in one step.
    pub max_batch: usize,
    /// Threads of its own pool; `None` uses the global rayon pool.
    pub threads: Option<usize>,
}

impl Default for GeneratorOptions {
    fn default() -> Self {
        Self {
            max_batch: 16,
            threads: None,
        }
    }
}

struct Job {
    request: GenerationRequest,
    events: Sender<GenerationEvent>,
}

/// A request in the running batch.
struct Active {
    sequence: Sequence,
    /// Tokens for the next step: the prompt, then the last sampled token.
    pending: Vec<u32>,
    sampler: Sampler,
    generated: Vec<u32>,
    text: TextStream,
    max_tokens: usize,
    events: Sender<GenerationEvent>,
}

/// The batching generator. Dropping it finishes the requests in flight, then stops.
pub struct Generator {
    model: Arc<LlamaModel>,
    jobs: Option<Sender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl Generator {
    /// Starts the worker.
    pub fn new(model: Arc<LlamaModel>, options: GeneratorOptions) -> Result<Self> {
        let pool = match options.threads {
            Some(threads) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.max(1))
                    .build()
                    .map_err(|e| InferenceError::Invalid(format!("cannot start threads: {e}")))?,
            ),
            None => None,
        };
        let (jobs, queue) = mpsc::channel();
        let worker_model = Arc::clone(&model);
        let max_batch = options.max_batch.max(1);
        let worker = std::thread::Builder::new()
            .name("provdb-generator".into())
            .spawn(move || match pool {
                Some(pool) => pool.install(move || run(&worker_model, &queue, max_batch)),
                None => run(&worker_model, &queue, max_batch),
            })
            .map_err(|e| InferenceError::Invalid(format!("cannot start the generator: {e}")))?;
        Ok(Self {
            model,
            jobs: Some(jobs),
            worker: Some(worker),
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    /// Queues a request; its events arrive on the returned stream.
    pub fn submit(&self, request: GenerationRequest) -> Result<TokenStream> {
        request.params.validate()?;
        if request.prompt.is_empty() {
            return Err(InferenceError::Invalid("empty prompt".into()));
        }
        let context = self.model.config().context_length;
        if request.prompt.len() + request.params.max_tokens > context {
            return Err(InferenceError::Invalid(format!(
                "{} prompt tokens + {} new tokens exceed the model's context of {context}",
                request.prompt.len(),
                request.params.max_tokens
            )));
        }
        if let Some((adapter, _)) = request
            .adapters
            .adapters()
            .iter()
            .find(|(a, _)| !a.fits(self.model.config()))
        {
            return Err(InferenceError::Invalid(format!(
                "adapter {} was loaded for another base model",
                adapter.id()
            )));
        }
        let vocab = self.model.config().vocab;
        if let Some(bad) = request.prompt.iter().find(|&&t| t as usize >= vocab) {
            return Err(InferenceError::Invalid(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let (events, receiver) = mpsc::channel();
        let stopped = || InferenceError::Invalid("the generator has stopped".into());
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { request, events })
            .map_err(|_| stopped())?;
        Ok(TokenStream { events: receiver })
    }

    /// Queues several requests at once (they share steps from the first one).
    pub fn generate(&self, requests: Vec<GenerationRequest>) -> Result<Vec<TokenStream>> {
        requests.into_iter().map(|r| self.submit(r)).collect()
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The decoding loop: admit, step, sample, stream; until the queue closes and all finish.
fn run(model: &LlamaModel, queue: &Receiver<Job>, max_batch: usize) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut active: Vec<Active> = Vec::new();
    loop {
        if active.is_empty() && waiting.is_empty() {
            match queue.recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => return,
            }
        }
        waiting.extend(queue.try_iter());
        while active.len() < max_batch {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            active.push(Active {
                sequence: Sequence::with_adapters(job.request.adapters),
                pending: job.request.prompt,
                sampler: Sampler::new(&job.request.params),
                generated: Vec::new(),
                text: TextStream::new(),
                max_tokens: job.request.params.max_tokens,
                events: job.events,
            });
        }
        step(model, &mut active);
    }
}

/// One forward step of every active sequence; finished or cancelled ones leave the batch.
fn step(model: &LlamaModel, active: &mut Vec<Active>) {
    let mut inputs: Vec<StepInput<'_>> = active
        .iter_mut()
        .map(|a| StepInput {
            sequence: &mut a.sequence,
            tokens: &a.pending,
            logits: LogitsWanted::Last,
        })
        .collect();
    let logits = match model.forward(&mut inputs) {
        Ok(logits) => logits,
        Err(error) => {
            for a in active.drain(..) {
                let _ = a.events.send(GenerationEvent::Failed(error.to_string()));
            }
            return;
        }
    };
    let mut finished = vec![false; active.len()];
    for ((a, rows), done) in active.iter_mut().zip(logits).zip(&mut finished) {
        *done = advance(model, a, rows.last().map(Vec::as_slice));
    }
    let mut index = 0;
    active.retain(|_| {
        index += 1;
        !finished[index - 1]
    });
}

/// Samples one sequence's next token and streams it; true when the sequence is finished
/// (ended, out of tokens, failed or cancelled).
fn advance(model: &LlamaModel, a: &mut Active, logits: Option<&[f32]>) -> bool {
    let fail = |a: &Active, message: String| {
        let _ = a.events.send(GenerationEvent::Failed(message));
        true
    };
    let Some(logits) = logits else {
        return fail(a, "no logits for a sequence".into());
    };
    let next = match a.sampler.sample(logits) {
        Ok(next) => next,
        Err(error) => return fail(a, error.to_string()),
    };
    a.generated.push(next);
    let ended = model.end_of_turn().contains(&next);
    let text = if ended {
        String::new()
    } else {
        match a.text.next(model, &a.generated) {
            Ok(text) => text,
            Err(error) => return fail(a, error.to_string()),
        }
    };
    if a.events
        .send(GenerationEvent::Token { id: next, text })
        .is_err()
    {
        return true; // the stream was dropped: cancelled
    }
    let reason = if ended {
        FinishReason::EndOfTurn
    } else if a.generated.len() >= a.max_tokens {
        FinishReason::MaxTokens
    } else {
        a.pending = vec![next];
        return false;
    };
    let _ = a.events.send(GenerationEvent::Done {
        tokens: std::mem::take(&mut a.generated),
        reason,
    });
    true
}
