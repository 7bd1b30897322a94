//! [`AnswerModel`]: the generator a database answers with, its name in answers and the ledger,
//! the cache of the adapters requests may name, and the batching generator cited answers may
//! share. Also what an answer made with adapters owes their training data.

use std::sync::Arc;

use provdb_inference::llama::{Generator, LlamaModel};
use provdb_inference::lora::{AdapterCache, AdapterMix};
use provdb_storage::Store;

use crate::answer::split::TrainingPool;
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

    /// What the training data of each adapter in `mix` earns: from the provenance the adapter
    /// store records of the adapters the Model Factory trained (none for others).
    pub(crate) fn training_pools(
        &self,
        store: &Store,
        mix: &AdapterMix,
    ) -> Result<Vec<TrainingPool>> {
        let mut pools = Vec::new();
        for (adapter, weight) in mix.adapters() {
            let info = self
                .adapters
                .store()
                .info(adapter.id())
                .map_err(|e| Error::Internal(e.to_string()))?;
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
                datanet_id: store.datanet(&training.datanet).ok().map(|d| d.id),
                contributors,
            });
        }
        Ok(pools)
    }
}
