//! [`Answerer`]: one cited answer end to end over a database and the model it answers with:
//! check the request → price it at its upper bound (refused above the caller's
//! `max_fee_wei`, else held from the caller's balance) → retrieve → prompt → generate,
//! streaming (on the batching generator unless the attribution method needs the generation's
//! own cache) → verify the citation markers → attribute → price the tokens generated and
//! split the fee → append the answer, its charge and its payments to the ledger in one write.
//! Nothing is written unless the whole answer is, and nothing is done for a caller who cannot
//! pay.

use std::sync::Arc;
use std::time::Instant;

use provdb_index::SearchOptions;
use provdb_inference::InferenceError;
use provdb_inference::llama::{
    GenerationEvent, GenerationRequest, Generator, Llama, SamplingParams,
};
use provdb_inference::lora::AdapterMix;
use provdb_storage::{Address, AnswerRecord, Datanet, NewAnswer};

use crate::answer::attribution::{AttributionContext, Needs};
use crate::answer::citations::parse_citations;
use crate::answer::influence::{TrainingAttribution, attribute_training};
use crate::answer::model::AnswerModel;
use crate::answer::price::{Quote, split_priced};
use crate::answer::prompt::{PromptTokens, answer_prompt};
use crate::answer::record::{answer_id, citations_of, entry_of, payments_of};
use crate::answer::request::{Answer, AskRequest, Usage};
use crate::answer::sources::{Source, readable_named, retrieve};
use crate::answer::split::{Share, WeightedSource};
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

/// Answers questions over a database with citations and records who is paid.
pub(crate) struct Answerer<'a> {
    db: &'a Db,
    model: &'a AnswerModel,
}

/// A generated answer: its tokens, its text (decoded and trimmed), and the session that
/// generated it when it had one.
struct Generation {
    tokens: Vec<u32>,
    text: String,
    session: Option<Llama>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// A model failure while answering: not the caller's mistake.
fn failed(error: InferenceError) -> Error {
    Error::Internal(error.to_string())
}

/// A request priced before any work.
pub(crate) struct Priced {
    datanets: Vec<Datanet>,
    adapters: AdapterMix,
    quote: Quote,
    /// Its price at the `max_tokens` upper bound, in wei.
    pub(crate) bound: u128,
}

impl<'a> Answerer<'a> {
    /// An answerer over `db` (retrieval, the ledger and its fee policies) with `model` (named
    /// in the ledger and in model-specific fee policies).
    pub(crate) fn new(db: &'a Db, model: &'a AnswerModel) -> Self {
        Self { db, model }
    }

    /// Answers `request`, calling `on_text` with each piece of the answer as it is generated
    /// (returning false stops generation early); records the answer and its payments.
    pub(crate) fn ask(
        &self,
        request: &AskRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Answer> {
        let store = self.db.store();
        let Priced {
            datanets,
            adapters,
            mut quote,
            bound,
        } = self.price(request)?;
        // Priced at its upper bound before any work: refused, or held until recorded.
        let _hold = self.db.holds.hold(store, request.caller.who(), bound)?;
        let operator = self.db.operator()?;
        let started = Instant::now();
        let options = SearchOptions {
            k: request.k,
            mode: request.mode,
            ..SearchOptions::default()
        };
        let sources = retrieve(
            self.db,
            request.caller,
            &datanets,
            &request.question,
            &options,
        )?;
        let mut usage = Usage {
            retrieval_ms: ms(started),
            ..Usage::default()
        };
        let texts: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
        let parts = answer_prompt(&self.model.model, &request.question, &texts).map_err(failed)?;
        let method = request.attribution.method();
        let generation = self.generate(
            request,
            &parts,
            &adapters,
            method.needs(),
            &mut usage,
            on_text,
        )?;
        let text = &generation.text;
        let parsed = parse_citations(text, sources.len());
        let attributing = Instant::now();
        let weights = method.weights(&AttributionContext {
            sources: &sources,
            cited: &parsed.markers,
            answer_tokens: &generation.tokens,
            prompt: &parts,
            model: &self.model.model,
            generation: generation.session.as_ref().map(Llama::sequence),
        })?;
        if weights.len() != sources.len() {
            return Err(Error::Internal(format!(
                "{} attribution gave {} weights for {} sources",
                request.attribution.as_str(),
                weights.len(),
                sources.len()
            )));
        }
        let training_attribution = attribute_training(
            self.model,
            store,
            &mut quote,
            &adapters,
            &parts.tokens(None),
            &generation.tokens,
        )?;
        usage.attribution_ms = ms(attributing);
        let tokens = usage.completion_tokens;
        let fee_wei = quote.fee(tokens)?;
        let shares = self.split(&quote, tokens, &datanets, &sources, &weights, operator)?;
        let citations = citations_of(&sources, &parsed.markers, &weights, &shares);
        let answer_id = answer_id(request, text, &sources);
        // The answer also touched its adapters' training Datanets: the audit tables show it
        // only to callers who may read every Datanet it touched.
        let mut datanet_ids: Vec<_> = datanets.iter().map(|d| d.id).collect();
        for adapter in &quote.adapters {
            let trained_on = adapter.training.as_ref().and_then(|t| t.datanet_id);
            if let Some(id) = trained_on.filter(|id| !datanet_ids.contains(id)) {
                datanet_ids.push(id);
            }
        }
        let record = AnswerRecord {
            answer_id,
            ts_ms: now_ms(),
            caller: request.caller.who(),
            datanet_ids,
            question: request.question.clone(),
            text: text.clone(),
            model: self.model.name.clone(),
            adapter: (!adapters.is_base()).then(|| adapters.describe().join(",")),
            fee_wei,
            attribution: request.attribution.as_str().into(),
            training_attribution: training_method(&training_attribution),
            citations: citations.iter().flatten().map(|c| c.0.clone()).collect(),
            first_seq: 0,
            entries: 0,
        };
        let entries = shares.iter().map(entry_of).collect();
        store.append_answers(vec![NewAnswer { record, entries }])?;
        Ok(Answer {
            answer_id,
            answer: generation.text,
            citations: citations.into_iter().flatten().map(|c| c.1).collect(),
            dropped_markers: parsed.dropped,
            model: self.model.name.clone(),
            adapters: adapters.describe(),
            attribution: request.attribution,
            usage,
            fee_wei,
            split: payments_of(&shares),
            training_attribution,
        })
    }

    /// Prices `request` at its `max_tokens` upper bound, as `ask` does before any work: the
    /// Datanets it reads (refused when the caller may not), its adapters, its quote and the
    /// bound, refused above the caller's `max_fee_wei` or the operator's cap.
    pub(crate) fn price(&self, request: &AskRequest) -> Result<Priced> {
        request.validate()?;
        let adapters = self.model.adapter_mix(&request.adapters)?;
        let datanets = readable_named(self.db, request.caller, &request.datanets)?;
        let operator = self.db.operator()?;
        let quote = self
            .model
            .quote(self.db.store(), &datanets, &adapters, operator)?;
        let bound = quote.fee(request.max_tokens)?;
        self.check_price(request, &quote, bound)?;
        Ok(Priced {
            datanets,
            adapters,
            quote,
            bound,
        })
    }

    /// Refuses an answer whose price, at its upper bound, is above the caller's
    /// `max_fee_wei` or the operator's cap on one fee.
    fn check_price(&self, request: &AskRequest, quote: &Quote, bound: u128) -> Result<()> {
        let cap = request
            .max_fee_wei
            .unwrap_or(u128::MAX)
            .min(self.db.max_fee_wei);
        if bound > cap {
            let whose = if request.max_fee_wei.is_some_and(|m| m < self.db.max_fee_wei) {
                "the request's max_fee_wei"
            } else {
                "the operator's --max-fee-wei"
            };
            return Err(Error::PaymentRequired(format!(
                "this answer costs up to {bound} wei ({}), above {whose} of {cap} wei; nothing \
                 was done",
                quote.describe(request.max_tokens)
            )));
        }
        Ok(())
    }

    /// Generates the answer greedily, on the batching generator when there is one and the
    /// attribution method does not need the generation's own cache, else in a session of its
    /// own (kept for the method), and decodes it. Fills in the usage's generation fields.
    fn generate(
        &self,
        request: &AskRequest,
        parts: &PromptTokens,
        adapters: &AdapterMix,
        needs: Needs,
        usage: &mut Usage,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
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
        let (tokens, session) = match &self.model.batching {
            Some(generator) if !needs.generation_cache => {
                let request = GenerationRequest {
                    prompt,
                    params,
                    adapters: adapters.clone(),
                };
                (generate_batched(generator, request, &mut on_piece)?, None)
            }
            _ => {
                let mut session = Llama::new(Arc::clone(&self.model.model));
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
            .model
            .tokenizer()
            .decode(&tokens, true)
            .map_err(|e| Error::Internal(format!("cannot decode the answer: {e}")))?
            .trim()
            .to_string();
        Ok(Generation {
            tokens,
            text,
            session,
        })
    }

    /// Splits the fee of an answer that generated `tokens` tokens by `quote` over the weighted
    /// sources, under the effective fee policy of the model and `datanets`.
    fn split(
        &self,
        quote: &Quote,
        tokens: usize,
        datanets: &[Datanet],
        sources: &[Source],
        weights: &[u64],
        operator: Address,
    ) -> Result<Vec<Share>> {
        let weighted: Vec<WeightedSource> = sources
            .iter()
            .zip(weights)
            .map(|(s, &weight)| WeightedSource {
                record_id: s.hit.record_id,
                chunk_id: s.hit.chunk_id,
                datanet_id: s.datanet.id,
                contributor: s.hit.contributor,
                weight,
            })
            .collect();
        let datanet_ids: Vec<_> = datanets.iter().map(|d| d.id).collect();
        let policy = self
            .db
            .store()
            .effective_ledger_policy(&self.model.name, &datanet_ids)?;
        split_priced(quote, tokens, &policy, operator, &weighted)
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
    let events = generator.submit(request).map_err(failed)?;
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
            GenerationEvent::Failed(message) => return Err(Error::Internal(message)),
        }
    }
    Err(Error::Internal("the generator stopped".into()))
}

/// The training methods of an answer's adapters as its ledger record keeps them
/// (`0xID:influence,0xID2:tokens`; None without trained adapters).
fn training_method(attribution: &[TrainingAttribution]) -> Option<String> {
    (!attribution.is_empty()).then(|| {
        attribution
            .iter()
            .map(|a| format!("{}:{}", a.adapter, a.method))
            .collect::<Vec<_>>()
            .join(",")
    })
}
