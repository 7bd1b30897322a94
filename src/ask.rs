//! Cited answers and the ledger from the database's side: the generator a `Db` answers with,
//! [`Db::ask`] (the answer pipeline of [`crate::answer`] over this database), the fee policy,
//! ledger verification and epochs.

use std::sync::Arc;

use provdb_inference::llama::{Generator, LlamaModel};
use provdb_inference::lora::{AdapterCache, AdapterStore};
use provdb_storage::{Epoch, LedgerCheck, LedgerPolicy, MerkleTree, PolicyScope};

use crate::answer::model::AnswerModel;
use crate::answer::pipeline::Answerer;
use crate::answer::{Answer, AskRequest};
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

/// Bytes of adapters kept in memory unless the caller sets another budget.
pub const DEFAULT_ADAPTER_CACHE_BYTES: usize = 1 << 30;

/// The adapter store of the database in `dir` (`dir/adapters/`), without opening it.
pub fn adapter_store_at(dir: &std::path::Path) -> AdapterStore {
    AdapterStore::new(dir.join("adapters"))
}

impl Db {
    /// Answers with `model`, named `name` in answers and the ledger; adapters from
    /// [`Db::adapter_store`] are served through a cache of [`DEFAULT_ADAPTER_CACHE_BYTES`].
    pub fn with_generator(mut self, model: Arc<LlamaModel>, name: impl Into<String>) -> Self {
        let adapters = Arc::new(AdapterCache::new(
            self.adapter_store(),
            Arc::clone(&model),
            DEFAULT_ADAPTER_CACHE_BYTES,
        ));
        self.generator = Some(AnswerModel {
            model,
            name: name.into(),
            adapters,
            batching: None,
            influence: Arc::default(),
        });
        self
    }

    /// Generates cited answers through `generator` (built on the model of
    /// [`Db::with_generator`]), batched with the other requests it serves, instead of a
    /// session of their own each: a server answering several questions at once shares each
    /// decoding step between them. Leave-one-out answers keep their own session.
    pub fn with_batching_generator(mut self, generator: Arc<Generator>) -> Self {
        if let Some(answer_model) = &mut self.generator {
            answer_model.batching = Some(generator);
        }
        self
    }

    /// Keeps at most `bytes` of adapters in memory (after [`Db::with_generator`]).
    pub fn with_adapter_cache_bytes(mut self, bytes: usize) -> Self {
        let store = self.adapter_store();
        if let Some(generator) = &mut self.generator {
            generator.adapters = Arc::new(AdapterCache::new(
                store,
                Arc::clone(&generator.model),
                bytes,
            ));
        }
        self
    }

    /// Refuses answers whose fee is above `wei` (default [`crate::DEFAULT_MAX_FEE_WEI`]); the
    /// server's and CLI's `--max-fee-wei`.
    pub fn with_max_fee_wei(mut self, wei: u128) -> Self {
        self.max_fee_wei = wei;
        self
    }

    /// The largest fee one answer may carry.
    pub fn max_fee_wei(&self) -> u128 {
        self.max_fee_wei
    }

    /// The database's adapters: `DIR/adapters/`, content-addressed (see [`AdapterStore`]).
    pub fn adapter_store(&self) -> AdapterStore {
        adapter_store_at(self.dir())
    }

    /// The generator this database answers (and trains) with.
    pub(crate) fn answer_model(&self) -> Result<&AnswerModel> {
        self.generator.as_ref().ok_or_else(|| {
            Error::Invalid(
                "no generator model is loaded (run scripts/fetch-models.sh or pass --model)".into(),
            )
        })
    }

    /// The loaded generator model and its name, if any.
    pub fn generator_model(&self) -> Option<(&Arc<LlamaModel>, &str)> {
        self.generator.as_ref().map(|g| (&g.model, g.name.as_str()))
    }

    /// The adapter cache of the loaded generator, if any (what is resident, counters).
    pub fn adapter_cache(&self) -> Option<&Arc<AdapterCache>> {
        self.generator.as_ref().map(|g| &g.adapters)
    }

    /// Answers `request` with citations, streaming the text to `on_text` (return false to
    /// stop early), and records the answer and who is paid in the ledger. Its adapters are
    /// those the caller may see (`factory::visibility`); another is refused like an unknown id.
    pub fn ask(
        &self,
        request: &AskRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Answer> {
        // Before anything loads: a refused request costs nothing and writes nothing.
        request.validate()?;
        let model = self.answer_model()?;
        if request.adapters.is_empty() {
            return Answerer::new(self, model).ask(request, on_text);
        }
        let mut request = request.clone();
        request.adapters = self.visible_adapter_specs(&request.caller, &request.adapters)?;
        Answerer::new(self, model).ask(&request, on_text)
    }

    /// How the training data of `adapters` (`ID[:WEIGHT]` each, as `caller` may see them)
    /// influenced the text `answer` (token ids) generated after `prompt` with them: per adapter
    /// the Model Factory trained, its method and most influential training records, as an
    /// answer shows them. Nothing is paid or recorded.
    pub fn training_influence(
        &self,
        caller: &crate::Caller,
        adapters: &[String],
        prompt: &[u32],
        answer: &[u32],
    ) -> Result<Vec<crate::answer::TrainingAttribution>> {
        let model = self.answer_model()?;
        let specs = self.visible_adapter_specs(caller, adapters)?;
        let mix = model.adapter_mix(&specs)?;
        crate::answer::influence::training_influence(model, self.store(), &mix, prompt, answer)
    }

    /// What `request` costs at most (its `max_tokens` upper bound), priced as `ask` prices it
    /// before any work, without doing any: what a caller must hold, or pay in first (x402).
    /// Refused as `ask` refuses (an unreadable Datanet, an unseen adapter, a cap below it).
    pub fn price_bound(&self, request: &AskRequest) -> Result<u128> {
        request.validate()?;
        let model = self.answer_model()?;
        if request.adapters.is_empty() {
            return Ok(Answerer::new(self, model).price(request)?.bound);
        }
        let mut request = request.clone();
        request.adapters = self.visible_adapter_specs(&request.caller, &request.adapters)?;
        Ok(Answerer::new(self, model).price(&request)?.bound)
    }

    /// The fee policy set for `scope` (`None`: it falls back to a wider one).
    pub fn ledger_policy(&self, scope: &PolicyScope) -> Result<Option<LedgerPolicy>> {
        Ok(self.store.ledger_policy(scope)?)
    }

    /// Sets the default fee policy.
    pub fn set_ledger_policy(&self, policy: &LedgerPolicy) -> Result<()> {
        self.set_scoped_ledger_policy(&PolicyScope::Default, policy)
    }

    /// Sets the fee policy of a model or a Datanet (which overrides the default).
    pub fn set_scoped_ledger_policy(
        &self,
        scope: &PolicyScope,
        policy: &LedgerPolicy,
    ) -> Result<()> {
        Ok(self.store.set_ledger_policy(scope, policy)?)
    }

    /// Closes the ledger entries since the last epoch into a new epoch.
    pub fn close_epoch(&self) -> Result<Epoch> {
        Ok(self.store.close_epoch(now_ms())?)
    }

    /// The closed epochs, in order.
    pub fn epochs(&self) -> Result<Vec<Epoch>> {
        Ok(self.store.epochs()?)
    }

    /// The Merkle tree of a closed epoch's cumulative balances (checked against its root).
    pub fn epoch_tree(&self, epoch: u64) -> Result<MerkleTree> {
        Ok(self.store.epoch_tree(epoch)?)
    }

    /// Recomputes the ledger's hash chain; names the first broken entry.
    pub fn verify_ledger(&self) -> Result<LedgerCheck> {
        Ok(self.store.verify_ledger()?)
    }
}
