//! Paying an adapter's training contributors by measured influence on each answer: the
//! projected gradient of the answer's loss (its tokens teacher-forced after its prompt, under
//! the adapter, `GradientModel`) is regressed on every training record's stored gradient (the
//! adapter's gradient store, prepared once as a `GradientIndex`: unit gradients, a ridge, TRAK's
//! preconditioning in kernel form), so a record scores what its gradient adds to explaining the
//! answer's beyond what the others carry. The adapter's training pool then pays the
//! contributors of the records whose influence stands above the noise (three robust standard
//! deviations of all the records' scores), each in proportion to the sum of its records' scores
//! above that level: many unrelated records each scoring a little by chance earn nothing.
//!
//! Invariants: a record whose influence is not above the noise level is paid nothing; with no
//! such record the pool pays no one and the adapter's owner keeps the share; an adapter
//! without a gradient store (or published with `tokens`) keeps its token-count split; scores
//! are computed in f64 in a fixed order, so the same answer pays the same on every machine.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use provdb_inference::lora::{AdapterId, AdapterMix, GradientIndex};
use provdb_inference::train::{Example, GradientModel};
use provdb_storage::{Address, RecordId, Store};
use serde::Serialize;

use crate::answer::model::AnswerModel;
use crate::answer::price::Quote;
use crate::error::{Error, Result};

/// Records shown per adapter in an answer.
const SHOWN: usize = 5;
/// Gradient stores kept in memory (one per adapter, the most recent).
const KEPT_STORES: usize = 8;
/// Influence weights are scores in units of 10⁻¹² (u64 weights for the exact integer split).
const WEIGHT_UNIT: f64 = 1e12;

/// How one adapter's training share was split in an answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingAttribution {
    /// The adapter (0x id).
    pub adapter: String,
    /// `influence` or `tokens`.
    pub method: String,
    /// With `influence`, its most influential training records, best first.
    pub records: Vec<TrainingRecordScore>,
}

/// One training record's influence on an answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingRecordScore {
    /// The record (0x id).
    pub record_id: String,
    /// Who contributed it.
    pub contributor: String,
    /// Its influence: its coefficient when the answer's unit gradient is regressed on the
    /// training records' (paid in proportion when positive).
    pub score: f64,
}

/// What influence scoring keeps across answers: the gradient model over the served base (no
/// copy of its weights) and the most recent gradient stores.
#[derive(Default)]
pub(crate) struct InfluenceState {
    gradients: OnceLock<std::result::Result<Arc<GradientModel>, String>>,
    stores: Mutex<Vec<(AdapterId, Arc<GradientIndex>)>>,
}

impl AnswerModel {
    fn gradient_model(&self) -> Result<Arc<GradientModel>> {
        self.influence
            .gradients
            .get_or_init(|| {
                GradientModel::new(Arc::clone(&self.model))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::Internal)
    }

    fn gradient_index(&self, id: AdapterId) -> Result<Option<Arc<GradientIndex>>> {
        let mut stores = self
            .influence
            .stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = stores.iter().position(|(held, _)| *held == id) {
            let entry = stores.remove(at);
            let store = Arc::clone(&entry.1);
            stores.push(entry);
            return Ok(Some(store));
        }
        let Some(store) = self
            .adapters
            .store()
            .gradients(id)
            .map_err(|e| Error::Invalid(e.to_string()))?
        else {
            return Ok(None);
        };
        let store = Arc::new(GradientIndex::new(store));
        if stores.len() >= KEPT_STORES {
            stores.remove(0);
        }
        stores.push((id, Arc::clone(&store)));
        Ok(Some(store))
    }
}

/// Scores the answer `answer` (after `prompt`) for every adapter of `quote` that pays by
/// influence and puts the influence weights in its training pool; what each adapter's split
/// was based on.
pub(crate) fn attribute_training(
    model: &AnswerModel,
    store: &Store,
    quote: &mut Quote,
    mix: &AdapterMix,
    prompt: &[u32],
    answer: &[u32],
) -> Result<Vec<TrainingAttribution>> {
    let mut out = Vec::new();
    for priced in &mut quote.adapters {
        let Some(pool) = priced.training.as_mut() else {
            continue;
        };
        let id = AdapterId(priced.id);
        let scored = adapter_influence(model, store, mix, id, prompt, answer)?;
        if let Some(scored) = &scored {
            pool.contributors = weights(scored);
        }
        out.push(shown(id, scored));
    }
    Ok(out)
}

/// What the training data of each trained adapter of `mix` contributed to `answer` (after
/// `prompt`), as [`attribute_training`] scores it, paying no one.
pub(crate) fn training_influence(
    model: &AnswerModel,
    store: &Store,
    mix: &AdapterMix,
    prompt: &[u32],
    answer: &[u32],
) -> Result<Vec<TrainingAttribution>> {
    let mut out: Vec<TrainingAttribution> = Vec::new();
    let mut seen = Vec::new();
    for (adapter, _) in mix.adapters() {
        let id = adapter.id();
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let info = model
            .adapters
            .store()
            .info(id)
            .map_err(|e| Error::Internal(e.to_string()))?;
        if info.training.is_none() {
            continue;
        }
        let scored = adapter_influence(model, store, mix, id, prompt, answer)?;
        out.push(shown(id, scored));
    }
    Ok(out)
}

/// Adapter `id`'s training records scored for `answer`; None when it pays by tokens (no
/// gradient store, or not in `mix`).
fn adapter_influence(
    model: &AnswerModel,
    store: &Store,
    mix: &AdapterMix,
    id: AdapterId,
    prompt: &[u32],
    answer: &[u32],
) -> Result<Option<Vec<TrainingRecordScore>>> {
    let gradients = model.gradient_index(id)?;
    let loaded = mix
        .adapters()
        .iter()
        .find(|(a, _)| a.id() == id)
        .map(|(a, _)| a);
    let (Some(gradients), Some(loaded)) = (gradients, loaded) else {
        return Ok(None);
    };
    let adapter = format!("0x{}", hex::encode(id.0));
    let example = Example::new(prompt.to_vec(), answer.to_vec());
    let query = model
        .gradient_model()?
        .gradient(loaded, &example, &gradients.store.header.projection)
        .map_err(|e| Error::Internal(format!("influence of adapter {adapter}: {e}")))?;
    if query.len() != gradients.store.header.dim {
        return Err(Error::Internal(format!(
            "adapter {adapter}'s gradient store holds gradients of {} numbers, its answer \
             gradient has {}",
            gradients.store.header.dim,
            query.len()
        )));
    }
    score(store, &gradients, &query).map(Some)
}

/// What an answer shows of adapter `id`'s split: its method and its best records.
fn shown(id: AdapterId, scored: Option<Vec<TrainingRecordScore>>) -> TrainingAttribution {
    let adapter = format!("0x{}", hex::encode(id.0));
    let Some(mut records) = scored else {
        return TrainingAttribution {
            adapter,
            method: "tokens".into(),
            records: Vec::new(),
        };
    };
    records.sort_by(|a, b| b.score.total_cmp(&a.score));
    records.truncate(SHOWN);
    TrainingAttribution {
        adapter,
        method: "influence".into(),
        records,
    }
}

/// Every stored record's score against `query`, with its contributor.
fn score(store: &Store, index: &GradientIndex, query: &[f32]) -> Result<Vec<TrainingRecordScore>> {
    let scores = index.scores(query);
    let mut out = Vec::with_capacity(scores.len());
    for (id, score) in index.store.record_ids.iter().zip(scores) {
        let record_id = RecordId(*id);
        let contributor = store
            .record(&record_id)?
            .map(|r| r.contributor)
            .ok_or_else(|| {
                Error::Internal(format!("training record {record_id} is not in the store"))
            })?;
        out.push(TrainingRecordScore {
            record_id: record_id.to_string(),
            contributor: contributor.to_string(),
            score,
        });
    }
    Ok(out)
}

/// The noise level of `scores`: 3 robust standard deviations (1.4826 × the median absolute
/// deviation from the median), below which a score is not told apart from chance.
fn noise_level(scores: &[f64]) -> f64 {
    let median = |values: &mut Vec<f64>| -> f64 {
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    };
    let center = median(&mut scores.to_vec());
    let mut deviations: Vec<f64> = scores.iter().map(|s| (s - center).abs()).collect();
    3.0 * 1.4826 * median(&mut deviations)
}

/// The pool's contributors weighted by the sum of their records' scores above the noise level
/// (soft thresholding, the lasso's answer for a score drawn from noise: nothing).
fn weights(scored: &[TrainingRecordScore]) -> Vec<(Address, u64)> {
    let scores: Vec<f64> = scored.iter().map(|r| r.score).collect();
    let floor = noise_level(&scores).max(0.0);
    let mut by_contributor: BTreeMap<String, f64> = BTreeMap::new();
    for record in scored.iter().filter(|r| r.score > floor) {
        *by_contributor
            .entry(record.contributor.clone())
            .or_default() += record.score - floor;
    }
    by_contributor
        .into_iter()
        .filter_map(|(address, score)| {
            let weight = (score * WEIGHT_UNIT).round();
            let address: Address = address.parse().ok()?;
            (weight >= 1.0).then_some((address, weight.min(u64::MAX as f64) as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(contributor: u8, score: f64) -> TrainingRecordScore {
        TrainingRecordScore {
            record_id: String::new(),
            contributor: Address([contributor; 20]).to_string(),
            score,
        }
    }

    #[test]
    fn only_influence_above_the_noise_is_weighted_summed_per_contributor() {
        // Noise around zero from many records; two clear records by contributor 1.
        let mut records: Vec<TrainingRecordScore> = (0..40)
            .map(|i| scored(2 + (i % 4) as u8, f64::from(i % 7) * 0.002 - 0.006))
            .collect();
        records.push(scored(1, 0.5));
        records.push(scored(1, 0.25));
        let floor = noise_level(&records.iter().map(|r| r.score).collect::<Vec<_>>());
        assert!(floor > 0.0 && floor < 0.05, "{floor}");
        let weights = weights(&records);
        assert_eq!(weights.len(), 1, "{weights:?}");
        assert_eq!(weights[0].0, Address([1; 20]));
        let expected = ((0.75 - 2.0 * floor) * WEIGHT_UNIT).round() as u64;
        assert!(
            weights[0].1.abs_diff(expected) <= 1,
            "{weights:?} vs {expected}"
        );
        assert!(super::weights(&[scored(2, -0.1)]).is_empty());
    }
}
