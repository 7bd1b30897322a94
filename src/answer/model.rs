//! [`AnswerModel`]: the generator a database answers with, its name in answers and the ledger,
//! the cache of the adapters requests may name, and the batching generator cited answers may
//! share. Also what an answer costs (its [`Quote`]) and whom each part pays.

use std::sync::Arc;

use provdb_inference::llama::{Generator, LlamaModel};
use provdb_inference::lora::{AdapterCache, AdapterMix};
use provdb_storage::{Address, Datanet, PriceScope, Store};

use crate::answer::price::{PricedAdapter, Quote};
use crate::answer::training_split::{TrainingPool, mix_weight};
use crate::error::{Error, Result};

/// The model a database answers with, its name in answers and the ledger, and the cache of
/// the adapters requests may name.
#[derive(Clone)]
pub(crate) struct AnswerModel {
    pub(crate) model: Arc<LlamaModel>,
    pub(crate) name: String,
    pub(crate) adapters: Arc<AdapterCache>,
    /// Where cited answers generate, batched with other requests (else a session each).
    pub(crate) batching: Option<Arc<Generator>>,
    /// Influence scoring's gradient model and gradient stores, made on first use.
    pub(crate) influence: Arc<crate::answer::influence::InfluenceState>,
}

impl AnswerModel {
    /// The adapters a request names (`ID[:WEIGHT]` each), loaded; none is the base model.
    pub(crate) fn adapter_mix(&self, names: &[String]) -> Result<AdapterMix> {
        if names.is_empty() {
            return Ok(AdapterMix::base());
        }
        self.adapters
            .mix(names)
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// What an answer by this model over `datanets` with the adapters of `mix` costs, from the
    /// prices stored (none set: free), with who each part pays: a Datanet's treasury is its
    /// owner, an adapter's part goes to its training contributors (from the provenance the
    /// adapter store records of the adapters the Model Factory trained) and its owner; the
    /// operator stands in for an owner not named.
    pub(crate) fn quote(
        &self,
        store: &Store,
        datanets: &[Datanet],
        mix: &AdapterMix,
        operator: Address,
    ) -> Result<Quote> {
        let per_answer = |scope: PriceScope| -> Result<(u128, u128)> {
            Ok(store
                .price(&scope)?
                .map_or((0, 0), |p| (p.per_answer_wei, p.per_1k_tokens_wei)))
        };
        let (model_per_answer_wei, model_per_1k_tokens_wei) =
            per_answer(PriceScope::Model(self.name.clone()))?;
        let mut quote = Quote {
            model_per_answer_wei,
            model_per_1k_tokens_wei,
            ..Quote::default()
        };
        for datanet in datanets {
            let (price, _) = per_answer(PriceScope::Datanet(datanet.id))?;
            quote
                .datanets
                .push((datanet.id, price, datanet.owner.unwrap_or(operator)));
        }
        for (adapter, weight) in mix.adapters() {
            let id = adapter.id();
            // An adapter named twice in one mix is priced once, at its weights' sum.
            if let Some(priced) = quote.adapters.iter_mut().find(|a| a.id == id.0) {
                if let Some(pool) = priced.training.as_mut() {
                    pool.mix_weight = pool.mix_weight.saturating_add(mix_weight(*weight));
                }
                continue;
            }
            let info = self
                .adapters
                .store()
                .info(id)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let training = info.training.as_ref().map(|training| TrainingPool {
                bps: u16::try_from(training.share_bps.min(10_000)).unwrap_or(10_000),
                mix_weight: mix_weight(*weight),
                datanet_id: store.datanet(&training.datanet).ok().map(|d| d.id),
                contributors: training
                    .contributors
                    .iter()
                    .filter_map(|c| Some((c.address.parse().ok()?, c.tokens)))
                    .collect(),
            });
            quote.adapters.push(PricedAdapter {
                id: id.0,
                per_answer_wei: per_answer(PriceScope::Adapter(id.0))?.0,
                owner: info.owner.and_then(|o| o.parse().ok()).unwrap_or(operator),
                training,
            });
        }
        Ok(quote)
    }
}
