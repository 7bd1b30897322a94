//! What an answer costs and whom its fee pays: the [`Quote`] built from the prices owners set
//! (`provdb price`), and [`split_priced`], which splits a fee part by part.
//!
//! The fee is the model's price per answer, plus its price per 1,000 generated tokens
//! (rounded up to the wei), plus the price of every Datanet the answer retrieves from, plus
//! the price of every adapter it uses. A caller names none of these: it may only cap them
//! (`max_fee_wei`). Before any work the answer is priced at its `max_tokens` upper bound, and
//! that bound is what the caller must hold and not exceed.
//!
//! The split, part by part, in exact integers: the protocol takes its basis points of each
//! part (rounded down); the rest of the model's part goes to the model's owner (the fee
//! policy's, else the operator); the rest of a Datanet's part to the sources of that Datanet
//! by attribution weight ([`super::split::split_fee`]), or, with none paid, to its treasury
//! (its owner); the rest of an adapter's part first to training contributors (the adapters'
//! training shares, split between them by mix weight and within each by influence or tokens,
//! [`super::training_split`]) and then to the adapter's owner.
//!
//! Invariants (property-tested): the shares sum exactly to the fee; a Datanet's contributors
//! are paid only out of that Datanet's price; a part priced 0 pays no one (its contributors
//! still show, paid 0, so citations keep their weights).

use provdb_storage::{Address, DatanetId, LedgerPolicy, Role};

use crate::answer::split::{BPS, Share, SplitPolicy, WeightedSource, split_fee};
use crate::answer::training_split::{AdapterPart, TrainingPool, pay_training};
use crate::error::{Error, Result};

/// An adapter's price, who owns it and what its training data earns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedAdapter {
    /// The adapter's id.
    pub id: [u8; 32],
    /// Its price per answer, in wei.
    pub per_answer_wei: u128,
    /// Who is paid the rest of its part.
    pub owner: Address,
    /// Its training contributors, for an adapter the Model Factory trained.
    pub training: Option<TrainingPool>,
}

/// What an answer costs, part by part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quote {
    /// The model's price per answer.
    pub model_per_answer_wei: u128,
    /// The model's price per 1,000 generated tokens.
    pub model_per_1k_tokens_wei: u128,
    /// Each Datanet retrieved from, with its price per answer, and its treasury.
    pub datanets: Vec<(DatanetId, u128, Address)>,
    /// Each adapter used.
    pub adapters: Vec<PricedAdapter>,
}

fn overflow() -> Error {
    Error::Invalid("the prices of this answer sum past 2^128 - 1 wei".into())
}

impl Quote {
    /// The model's price for `tokens` generated tokens, rounded up to the wei.
    pub fn tokens_wei(&self, tokens: usize) -> Result<u128> {
        let product = self
            .model_per_1k_tokens_wei
            .checked_mul(tokens as u128)
            .ok_or_else(overflow)?;
        Ok(product.div_ceil(1_000))
    }

    /// The model's whole part for `tokens` generated tokens.
    fn model_wei(&self, tokens: usize) -> Result<u128> {
        self.model_per_answer_wei
            .checked_add(self.tokens_wei(tokens)?)
            .ok_or_else(overflow)
    }

    /// The fee of an answer that generated `tokens` tokens.
    pub fn fee(&self, tokens: usize) -> Result<u128> {
        let parts = self
            .datanets
            .iter()
            .map(|d| d.1)
            .chain(self.adapters.iter().map(|a| a.per_answer_wei));
        parts
            .into_iter()
            .try_fold(self.model_wei(tokens)?, u128::checked_add)
            .ok_or_else(overflow)
    }

    /// Each part's price, for messages: `model 5 + 2/1k tokens, datanet #1 10, ...`.
    pub fn describe(&self, max_tokens: usize) -> String {
        let mut parts = vec![format!(
            "model {} wei + {} wei per 1,000 tokens (up to {max_tokens} tokens)",
            self.model_per_answer_wei, self.model_per_1k_tokens_wei
        )];
        parts.extend(
            self.datanets
                .iter()
                .map(|(id, wei, _)| format!("datanet #{id} {wei} wei")),
        );
        parts.extend(
            self.adapters
                .iter()
                .map(|a| format!("adapter 0x{} {} wei", hex::encode(a.id), a.per_answer_wei)),
        );
        parts.join(", ")
    }
}

/// Splits the fee of an answer that generated `tokens` tokens by `quote` (see the module
/// docs). `sources` are the weighted sources of every Datanet; `operator` owns the model when
/// the policy names no owner.
pub fn split_priced(
    quote: &Quote,
    tokens: usize,
    policy: &LedgerPolicy,
    operator: Address,
    sources: &[WeightedSource],
) -> Result<Vec<Share>> {
    policy.validate()?;
    let protocol = policy.protocol.unwrap_or(operator);
    let mut protocol_wei = 0u128;
    let mut cut = |amount: u128| -> Result<u128> {
        let share = amount / BPS * u128::from(policy.protocol_bps)
            + amount % BPS * u128::from(policy.protocol_bps) / BPS;
        protocol_wei = protocol_wei.checked_add(share).ok_or_else(overflow)?;
        Ok(amount - share)
    };
    let model_owner = policy.model_owner.unwrap_or(operator);
    let mut shares = vec![Share::fixed(
        model_owner,
        Role::ModelOwner,
        cut(quote.model_wei(tokens)?)?,
    )];
    let parts = quote
        .adapters
        .iter()
        .map(|adapter| {
            Ok(AdapterPart {
                pool: adapter.training.as_ref(),
                rest: cut(adapter.per_answer_wei)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (training, left) = pay_training(&parts)?;
    shares.extend(training);
    for (adapter, left) in quote.adapters.iter().zip(left) {
        shares.push(Share::fixed(adapter.owner, Role::ModelOwner, left));
    }
    let free = SplitPolicy::from_ledger(&LedgerPolicy::default());
    for &(datanet_id, price, treasury) in &quote.datanets {
        let rest = cut(price)?;
        let own: Vec<WeightedSource> = sources
            .iter()
            .filter(|s| s.datanet_id == datanet_id)
            .copied()
            .collect();
        shares.extend(split_fee(rest, &free, &own, &[(datanet_id, treasury)])?);
    }
    shares.push(Share::fixed(protocol, Role::Protocol, protocol_wei));
    // A fixed share of 0 pays no one; a contributor's 0 still shows its weight.
    shares.retain(|s| s.amount_wei > 0 || s.role == Role::Contributor);
    let paid = shares
        .iter()
        .try_fold(0u128, |sum, s| sum.checked_add(s.amount_wei));
    if paid != Some(quote.fee(tokens)?) {
        return Err(Error::Internal(format!(
            "the split pays {paid:?} wei for a fee of {} wei",
            quote.fee(tokens)?
        )));
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use provdb_storage::RecordId;

    use super::*;

    const OPERATOR: Address = Address([0x0f; 20]);

    fn source(record: u8, datanet_id: DatanetId, weight: u64) -> WeightedSource {
        WeightedSource {
            record_id: RecordId([record; 32]),
            chunk_id: u64::from(record),
            datanet_id,
            contributor: Address([record; 20]),
            weight,
        }
    }

    fn quote(model: u128, per_1k: u128, datanets: &[(DatanetId, u128)]) -> Quote {
        Quote {
            model_per_answer_wei: model,
            model_per_1k_tokens_wei: per_1k,
            datanets: datanets
                .iter()
                .map(|&(id, wei)| (id, wei, Address([0xd0 + id as u8; 20])))
                .collect(),
            adapters: Vec::new(),
        }
    }

    fn total(shares: &[Share], to: Address) -> u128 {
        shares
            .iter()
            .filter(|s| s.to == to)
            .map(|s| s.amount_wei)
            .sum()
    }

    #[test]
    fn each_datanet_pays_its_own_contributors_and_tokens_round_up() {
        let q = quote(100, 7, &[(1, 1_000), (2, 50)]);
        assert_eq!(q.tokens_wei(1).unwrap(), 1);
        assert_eq!(q.fee(1_000).unwrap(), 100 + 7 + 1_000 + 50);
        let policy = LedgerPolicy {
            protocol: Some(Address([0xee; 20])),
            protocol_bps: 1_000,
            ..LedgerPolicy::default()
        };
        // Datanet 1 has a paid source; Datanet 2 none, so its treasury is paid.
        let sources = [source(1, 1, 3), source(2, 1, 1), source(3, 2, 0)];
        let shares = split_priced(&q, 1_000, &policy, OPERATOR, &sources).unwrap();
        assert_eq!(total(&shares, OPERATOR), 107 - 10);
        assert_eq!(total(&shares, Address([0xee; 20])), 10 + 100 + 5);
        assert_eq!(total(&shares, Address([1; 20])), 675);
        assert_eq!(total(&shares, Address([2; 20])), 225);
        assert_eq!(total(&shares, Address([0xd2; 20])), 45);
        assert_eq!(total(&shares, Address([3; 20])), 0);
    }

    #[test]
    fn an_adapter_pays_its_training_data_then_its_owner() {
        let mut q = quote(0, 0, &[]);
        q.adapters.push(PricedAdapter {
            id: [9; 32],
            per_answer_wei: 1_000,
            owner: Address([0xa0; 20]),
            training: Some(TrainingPool {
                bps: 2_500,
                mix_weight: 1,
                datanet_id: Some(4),
                contributors: vec![(Address([5; 20]), 3), (Address([6; 20]), 1)],
            }),
        });
        let shares = split_priced(&q, 10, &LedgerPolicy::default(), OPERATOR, &[]).unwrap();
        assert_eq!(total(&shares, Address([5; 20])), 188);
        assert_eq!(total(&shares, Address([6; 20])), 62);
        assert_eq!(total(&shares, Address([0xa0; 20])), 750);
        // Free parts pay no one.
        assert!(shares.iter().all(|s| s.amount_wei > 0));
    }

    proptest! {
        #[test]
        fn shares_sum_to_the_fee(
            model in 0u128..1u128 << 100,
            per_1k in 0u128..1u128 << 90,
            tokens in 0usize..1_025,
            prices in prop::collection::vec(0u128..1u128 << 100, 1..4),
            weights in prop::collection::vec((0u32..4, 0u64..1_000), 0..8),
            bps in 0u16..=10_000,
        ) {
            let datanets: Vec<(DatanetId, u128)> =
                prices.iter().enumerate().map(|(i, p)| (i as DatanetId, *p)).collect();
            let q = quote(model, per_1k, &datanets);
            let sources: Vec<WeightedSource> = weights
                .iter()
                .enumerate()
                .map(|(i, &(d, w))| source(i as u8 + 1, d, w))
                .collect();
            let policy = LedgerPolicy {
                protocol: Some(Address([0xee; 20])),
                protocol_bps: bps,
                ..LedgerPolicy::default()
            };
            let shares = split_priced(&q, tokens, &policy, OPERATOR, &sources).unwrap();
            let sum: u128 = shares.iter().map(|s| s.amount_wei).sum();
            prop_assert_eq!(sum, q.fee(tokens).unwrap());
            // No Datanet's contributor is paid out of another Datanet's price.
            for (id, price) in &datanets {
                let of_datanet: u128 = shares
                    .iter()
                    .filter(|s| s.datanet_id == Some(*id))
                    .map(|s| s.amount_wei)
                    .sum();
                prop_assert!(of_datanet <= *price);
            }
        }
    }
}
