//! [`Answerer`]: runs one cited answer end to end over a store, a searcher and a model.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use provdb_index::{IndexHit, SearchOptions};
use provdb_inference::llama::{
    GenerationEvent, GenerationRequest, Generator, Llama, LlamaModel, SamplingParams, Sequence,
};
use provdb_inference::lora::{AdapterCache, AdapterMix};
use provdb_storage::{
    AnswerRecord, CitationRecord, Datanet, NewAnswer, NewEntry, Store, keccak256,
};

use super::citations::parse_citations;
use super::loo::{Variant, answer_log_probs};
use super::prompt::{PromptTokens, answer_prompt, clip};
use super::split::{Share, SplitPolicy, TrainingPool, WeightedSource, split_fee_with_training};
use super::{
    Answer, AskRequest, Attribution, Citation, MAX_QUESTION_BYTES, MAX_SOURCES, Payment, Usage,
};
use crate::access::readable_datanets;
use crate::error::{QueryError, Result};
use crate::search::Searcher;

/// Bytes of a chunk shown as a citation's snippet.
const SNIPPET_BYTES: usize = 160;

/// A retrieved source.
struct Source {
    hit: IndexHit,
    datanet: Datanet,
    text: String,
}

/// Answers questions with citations and records who is paid.
pub struct Answerer {
    store: Arc<Store>,
    searcher: Arc<dyn Searcher>,
    model: Arc<LlamaModel>,
    model_name: String,
    adapters: Option<Arc<AdapterCache>>,
    batching: Option<Arc<Generator>>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Answerer {
    /// An answerer over `store` (the ledger and its fee policies), `searcher` (retrieval) and
    /// `model` (named `model_name` in the ledger and in model-specific fee policies).
    pub fn new(
        store: Arc<Store>,
        searcher: Arc<dyn Searcher>,
        model: Arc<LlamaModel>,
        model_name: String,
    ) -> Self {
        Self {
            store,
            searcher,
            model,
            model_name,
            adapters: None,
            batching: None,
        }
    }

    /// Generates answers attributed by their citations through `generator` (built on the same
    /// model), batched with whatever else it is generating; leave-one-out attribution needs
    /// the generation's own cache and keeps a private session.
    pub fn with_batching(mut self, generator: Arc<Generator>) -> Self {
        self.batching = Some(generator);
        self
    }

    /// Serves the adapters requests name from `cache` (built for the same model).
    pub fn with_adapters(mut self, cache: Arc<AdapterCache>) -> Self {
        self.adapters = Some(cache);
        self
    }

    /// The adapters `request` names, loaded.
    fn adapter_mix(&self, request: &AskRequest) -> Result<AdapterMix> {
        if request.adapters.is_empty() {
            return Ok(AdapterMix::base());
        }
        let cache = self.adapters.as_ref().ok_or_else(|| {
            QueryError::Invalid("this answerer serves no adapters (no adapter store)".into())
        })?;
        cache
            .mix(&request.adapters)
            .map_err(|e| QueryError::Invalid(e.to_string()))
    }

    /// What the training data of each adapter in `mix` earns: from the provenance the adapter
    /// store records of the adapters the Model Factory trained (none for others).
    fn training_pools(&self, mix: &AdapterMix) -> Result<Vec<TrainingPool>> {
        let Some(cache) = &self.adapters else {
            return Ok(Vec::new());
        };
        let mut pools = Vec::new();
        for (adapter, weight) in mix.adapters() {
            let info = cache
                .store()
                .info(adapter.id())
                .map_err(|e| QueryError::Execution(e.to_string()))?;
            let Some(training) = info.training else {
                continue;
            };
            let contributors = training
                .contributors
                .iter()
                .filter_map(|c| Some((c.address.parse().ok()?, c.tokens)))
                .collect();
            pools.push(TrainingPool {
                bps: u16::try_from(training.share_bps.min(10_000)).unwrap_or(10_000),
                // The adapter's part of the mix, in millionths (at least one).
                mix_weight: ((f64::from(weight.abs()) * 1e6).round() as u64).max(1),
                datanet_id: self.store.datanet(&training.datanet).ok().map(|d| d.id),
                contributors,
            });
        }
        Ok(pools)
    }

    fn validate(&self, request: &AskRequest) -> Result<()> {
        let invalid = |m: String| Err(QueryError::Invalid(m));
        if request.question.trim().is_empty() {
            return invalid("the question is empty".into());
        }
        if request.question.len() > MAX_QUESTION_BYTES {
            return invalid(format!(
                "the question is {} bytes, at most {MAX_QUESTION_BYTES}",
                request.question.len()
            ));
        }
        if request.datanets.is_empty() {
            return invalid("name at least one Datanet to answer from".into());
        }
        if request.k == 0 || request.k > MAX_SOURCES {
            return invalid(format!("k must be in 1..={MAX_SOURCES}, got {}", request.k));
        }
        if request.max_tokens == 0 || request.max_tokens > 1024 {
            return invalid(format!(
                "max_tokens must be in 1..=1024, got {}",
                request.max_tokens
            ));
        }
        Ok(())
    }

    /// The top `k` chunks for the question over the requested Datanets.
    fn retrieve(&self, request: &AskRequest) -> Result<Vec<Source>> {
        let readable = readable_datanets(&self.store, &request.caller)?;
        let options = SearchOptions {
            k: request.k,
            mode: request.mode,
            ..SearchOptions::default()
        };
        let mut sources = Vec::new();
        for name in &request.datanets {
            let datanet = readable
                .iter()
                .find(|d| &d.name == name)
                .cloned()
                .ok_or_else(|| QueryError::Invalid(format!("unknown datanet '{name}'")))?;
            let hits = self
                .searcher
                .search(name, &request.question, &options, request.caller)?;
            sources.extend(hits.into_iter().map(|hit| (hit, datanet.clone())));
        }
        sources.sort_by(|a, b| {
            b.0.score
                .total_cmp(&a.0.score)
                .then(a.0.chunk_id.cmp(&b.0.chunk_id))
        });
        sources.truncate(request.k);
        sources
            .into_iter()
            .map(|(hit, datanet)| {
                let chunk = self.store.chunk(hit.chunk_id)?.ok_or_else(|| {
                    QueryError::Execution(format!("retrieved chunk {} is not stored", hit.chunk_id))
                })?;
                Ok(Source {
                    hit,
                    datanet,
                    text: chunk.text,
                })
            })
            .collect()
    }

    /// Answers `request`, calling `on_text` with each piece of the answer as it is generated
    /// (returning false stops generation early); records the answer and its payments.
    pub fn ask(
        &self,
        request: &AskRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Answer> {
        self.validate(request)?;
        let failed = |e: provdb_inference::InferenceError| QueryError::Execution(e.to_string());
        let adapters = self.adapter_mix(request)?;
        let started = Instant::now();
        let sources = self.retrieve(request)?;
        let mut usage = Usage {
            retrieval_ms: ms(started),
            ..Usage::default()
        };
        let texts: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
        let parts = answer_prompt(&self.model, &request.question, &texts).map_err(failed)?;
        let prompt = parts.tokens(None);
        usage.prompt_tokens = prompt.len();
        let generating = Instant::now();
        let params = SamplingParams {
            max_tokens: request.max_tokens,
            temperature: 0.0,
            ..SamplingParams::default()
        };
        let mut first_token = None;
        let mut on_piece = |piece: &str| {
            first_token.get_or_insert_with(|| ms(generating));
            on_text(piece)
        };
        let (tokens, session) = match (&self.batching, request.attribution) {
            (Some(generator), Attribution::Cited) => {
                let request = GenerationRequest {
                    prompt,
                    params,
                    adapters: adapters.clone(),
                };
                (generate_batched(generator, request, &mut on_piece)?, None)
            }
            _ => {
                let mut session = Llama::new(Arc::clone(&self.model));
                session.set_adapters(adapters.clone());
                let tokens = session
                    .generate(&prompt, params, &mut on_piece)
                    .map_err(failed)?;
                (tokens, Some(session))
            }
        };
        usage.generation_ms = ms(generating);
        usage.first_token_ms = first_token.unwrap_or(usage.generation_ms);
        usage.completion_tokens = tokens.len();
        let text = self
            .model
            .tokenizer()
            .decode(&tokens, true)
            .map_err(|e| QueryError::Execution(format!("cannot decode the answer: {e}")))?
            .trim()
            .to_string();
        let parsed = parse_citations(&text, sources.len());
        let attributing = Instant::now();
        let weights = match request.attribution {
            Attribution::Cited => cited_weights(&sources, &parsed.markers),
            Attribution::Loo => match &session {
                Some(session) => loo_weights(&self.model, session.sequence(), &parts, &tokens)?,
                None => {
                    return Err(QueryError::Execution(
                        "leave-one-out attribution needs the generation's own session".into(),
                    ));
                }
            },
        };
        usage.attribution_ms = ms(attributing);
        let weighted: Vec<WeightedSource> = sources
            .iter()
            .zip(&weights)
            .map(|(s, &weight)| WeightedSource {
                record_id: s.hit.record_id,
                chunk_id: s.hit.chunk_id,
                datanet_id: s.datanet.id,
                contributor: s.hit.contributor,
                weight,
            })
            .collect();
        let mut datanets = Vec::new();
        for name in &request.datanets {
            datanets.push(self.store.datanet(name)?);
        }
        let datanet_ids: Vec<_> = datanets.iter().map(|d| d.id).collect();
        let ledger_policy = self
            .store
            .effective_ledger_policy(&self.model_name, &datanet_ids)?;
        ledger_policy.validate()?;
        // A Datanet's treasury is its owner, else the protocol's account.
        let treasuries: Vec<_> = datanets
            .iter()
            .filter_map(|d| d.owner.or(ledger_policy.protocol).map(|t| (d.id, t)))
            .collect();
        let policy = SplitPolicy::from_ledger(&ledger_policy);
        let training = self.training_pools(&adapters)?;
        let shares = split_fee_with_training(
            request.fee_wei,
            &policy,
            &weighted,
            &treasuries,
            &training,
        )
        .map_err(|e| {
            QueryError::Invalid(format!(
                "{e}: the answer cites no source, and its Datanets have no owner to hold the \
                 data share (set a protocol account: provdb ledger policy --protocol ADDR)"
            ))
        })?;
        let citations = citations_of(&sources, &parsed.markers, &weights, &shares);
        let answer_id = answer_id(request, &text, &sources);
        let record = AnswerRecord {
            answer_id,
            ts_ms: now_ms(),
            caller: request.caller.who(),
            datanet_ids,
            question: request.question.clone(),
            text: text.clone(),
            model: self.model_name.clone(),
            adapter: (!adapters.is_base()).then(|| adapters.describe().join(",")),
            fee_wei: request.fee_wei,
            attribution: request.attribution.as_str().into(),
            citations: citations.iter().flatten().map(|c| c.0.clone()).collect(),
            first_seq: 0,
            entries: 0,
        };
        let entries = shares.iter().map(entry_of).collect();
        self.store
            .append_answers(vec![NewAnswer { record, entries }])?;
        Ok(Answer {
            answer_id,
            answer: text,
            citations: citations.into_iter().flatten().map(|c| c.1).collect(),
            dropped_markers: parsed.dropped,
            model: self.model_name.clone(),
            adapters: adapters.describe(),
            attribution: request.attribution,
            usage,
            fee_wei: request.fee_wei,
            split: shares
                .iter()
                .map(|s| Payment {
                    to: s.to,
                    role: s.role,
                    amount_wei: s.amount_wei,
                })
                .collect(),
        })
    }
}

/// Runs `request` on the batching generator, passing each piece of text to `on_text` (false
/// stops it: dropping the stream cancels the request). Returns the generated ids as
/// [`Llama::generate`] does: up to and including an end-of-turn token.
fn generate_batched(
    generator: &Generator,
    request: GenerationRequest,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Vec<u32>> {
    let events = generator
        .submit(request)
        .map_err(|e| QueryError::Execution(e.to_string()))?;
    let mut tokens = Vec::new();
    for event in events {
        match event {
            GenerationEvent::Token { id, text } => {
                tokens.push(id);
                if !text.is_empty() && !on_text(&text) {
                    return Ok(tokens);
                }
            }
            GenerationEvent::Done { tokens, .. } => return Ok(tokens),
            GenerationEvent::Failed(message) => return Err(QueryError::Execution(message)),
        }
    }
    Err(QueryError::Execution("the generator stopped".into()))
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
        return Err(QueryError::Execution(
            "the generation's cache does not hold its prompt".into(),
        ));
    }
    let last = parts
        .tail
        .last()
        .copied()
        .ok_or_else(|| QueryError::Execution("the prompt template has an empty tail".into()))?;
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

/// Weights of the cited sources: their retrieval score (at least 1 for a cited source).
fn cited_weights(sources: &[Source], markers: &[u32]) -> Vec<u64> {
    (1..=sources.len() as u32)
        .map(|number| {
            if markers.contains(&number) {
                let score = sources[number as usize - 1].hit.score.max(0.0);
                ((f64::from(score) * 1e6) as u64).max(1)
            } else {
                0
            }
        })
        .collect()
}

/// One citation per source that was cited or paid, with the weight the split gave it.
fn citations_of(
    sources: &[Source],
    markers: &[u32],
    weights: &[u64],
    shares: &[Share],
) -> Vec<Option<(CitationRecord, Citation)>> {
    sources
        .iter()
        .enumerate()
        .map(|(index, source)| {
            let number = index as u32 + 1;
            let cited = markers.contains(&number);
            if !cited && weights[index] == 0 {
                return None;
            }
            let weight_ppm = shares
                .iter()
                .find(|s| s.source.is_some_and(|x| x.chunk_id == source.hit.chunk_id))
                .map_or(0, |s| s.weight_ppm);
            let marker = if cited { number } else { 0 };
            let record = CitationRecord {
                marker,
                chunk_id: source.hit.chunk_id,
                record_id: source.hit.record_id,
                datanet_id: source.datanet.id,
                contributor: source.hit.contributor,
                retrieval_score: source.hit.score,
                weight_ppm,
            };
            let citation = Citation {
                marker,
                chunk_id: source.hit.chunk_id,
                record_id: source.hit.record_id,
                datanet: source.datanet.name.clone(),
                contributor: source.hit.contributor,
                snippet: clip(&source.text, SNIPPET_BYTES).to_string(),
                retrieval_score: source.hit.score,
                weight_ppm,
            };
            Some((record, citation))
        })
        .collect()
}

fn entry_of(share: &Share) -> NewEntry {
    NewEntry {
        datanet_id: share.datanet_id,
        record_id: share.source.map(|s| s.record_id),
        chunk_id: share.source.map(|s| s.chunk_id),
        to: share.to,
        role: share.role,
        weight_ppm: share.weight_ppm,
        amount_wei: share.amount_wei,
    }
}

/// keccak256 over the time, the caller, the question, the answer, the sources and 16 random
/// bytes: unique even for the same question asked twice in the same millisecond.
fn answer_id(request: &AskRequest, text: &str, sources: &[Source]) -> provdb_storage::AnswerId {
    let mut bytes = Vec::with_capacity(128 + request.question.len() + text.len());
    bytes.extend_from_slice(&now_ms().to_be_bytes());
    bytes.extend_from_slice(&request.caller.who().map_or([0; 20], |a| a.0));
    bytes.extend_from_slice(&rand::random::<[u8; 16]>());
    for part in [request.question.as_bytes(), text.as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    for source in sources {
        bytes.extend_from_slice(&source.hit.chunk_id.to_be_bytes());
    }
    provdb_storage::AnswerId(keccak256(&bytes))
}
