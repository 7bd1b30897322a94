//! The fee split: exact integer arithmetic in wei.
//!
//! An answer's fee goes `model_owner_bps` to the model's owner and `protocol_bps` to the
//! protocol (each rounded down), and the rest, the data share, to the sources by weight, or,
//! when no source is paid, equally to the treasuries of the Datanets searched. (What trained
//! adapters pay their training contributors is [`super::training_split`].)
//!
//! Invariants (property-tested):
//! - the amounts sum exactly to the fee; none is negative (they are unsigned) and none
//!   overflows (products are computed without exceeding `u128`);
//! - the result does not depend on the order of the sources;
//! - a contributor's total depends only on the sum of its sources' weights: rounding is done
//!   per contributor first (largest remainder, ties to the lower address), then within a
//!   contributor over its sources (largest remainder, ties to the lower record id), so
//!   splitting a record into copies that share its weight can never raise its contributor's
//!   total.

use std::collections::BTreeMap;

use provdb_storage::{Address, DatanetId, RecordId, Role};

use crate::error::{Error, Result};

/// Basis points in a whole.
pub const BPS: u128 = 10_000;

/// Who gets the fixed shares, and how large they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPolicy {
    /// Owner of the model that answers.
    pub model_owner: Address,
    /// Its share in basis points.
    pub model_owner_bps: u16,
    /// The protocol's account.
    pub protocol: Address,
    /// Its share in basis points.
    pub protocol_bps: u16,
}

impl SplitPolicy {
    /// The policy a database stores (an account missing where its share is 0 is never paid).
    pub fn from_ledger(policy: &provdb_storage::LedgerPolicy) -> Self {
        Self {
            model_owner: policy.model_owner.unwrap_or(Address([0; 20])),
            model_owner_bps: policy.model_owner_bps,
            protocol: policy.protocol.unwrap_or(Address([0; 20])),
            protocol_bps: policy.protocol_bps,
        }
    }

    /// Refuses shares that add up to more than the whole fee.
    pub fn validate(&self) -> Result<()> {
        if u128::from(self.model_owner_bps) + u128::from(self.protocol_bps) > BPS {
            return Err(Error::Invalid(format!(
                "model owner ({}) and protocol ({}) shares exceed 10000 basis points",
                self.model_owner_bps, self.protocol_bps
            )));
        }
        Ok(())
    }
}

/// A source to pay, with its attribution weight (any scale; only ratios matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightedSource {
    /// The record.
    pub record_id: RecordId,
    /// Its chunk.
    pub chunk_id: u64,
    /// Its Datanet.
    pub datanet_id: DatanetId,
    /// Its contributor.
    pub contributor: Address,
    /// Its weight.
    pub weight: u64,
}

/// One payment of a split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// Who.
    pub to: Address,
    /// Why.
    pub role: Role,
    /// The source (contributor shares), or the Datanet (treasury shares).
    pub source: Option<WeightedSource>,
    /// The Datanet of a treasury share.
    pub datanet_id: Option<DatanetId>,
    /// Weight in parts per million of the data share (0 for fixed shares).
    pub weight_ppm: u32,
    /// Amount in wei.
    pub amount_wei: u128,
}

impl Share {
    /// A fixed share: no source, no Datanet, no weight.
    pub(crate) fn fixed(to: Address, role: Role, amount_wei: u128) -> Self {
        Self {
            to,
            role,
            source: None,
            datanet_id: None,
            weight_ppm: 0,
            amount_wei,
        }
    }
}

/// `floor(value * numerator / denominator)` without overflow, for `numerator <= denominator`.
pub(crate) fn mul_div_floor(value: u128, numerator: u128, denominator: u128) -> (u128, u128) {
    // value = q * d + r, so value * n / d = q * n + r * n / d, and r * n < d * d fits when
    // d < 2^64 (weights and bps are u64-sized).
    let (q, r) = (value / denominator, value % denominator);
    let product = r * numerator;
    (q * numerator + product / denominator, product % denominator)
}

/// Splits `amount` over `weights` (whose sum must be positive and fit u64) by largest
/// remainder; `order` ranks equal remainders (lower first). Returns one amount per weight.
pub(crate) fn largest_remainder<K: Ord>(amount: u128, weights: &[(K, u64)]) -> Vec<u128> {
    let total: u128 = weights.iter().map(|(_, w)| u128::from(*w)).sum();
    let mut amounts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (index, (_, weight)) in weights.iter().enumerate() {
        let (floor, remainder) = mul_div_floor(amount, u128::from(*weight), total);
        amounts.push(floor);
        remainders.push((remainder, index));
    }
    // Each floor is at most its exact share, so their sum is at most `amount`.
    let left = amount - amounts.iter().sum::<u128>();
    remainders.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| weights[a.1].0.cmp(&weights[b.1].0))
    });
    for (_, index) in remainders.into_iter().take(left as usize) {
        amounts[index] += 1;
    }
    amounts
}

/// Splits `fee_wei` by `policy` over `sources` (those with weight 0 are not paid). Without a
/// paid source the data share goes to `treasuries` (Datanet, its treasury) in equal parts.
pub fn split_fee(
    fee_wei: u128,
    policy: &SplitPolicy,
    sources: &[WeightedSource],
    treasuries: &[(DatanetId, Address)],
) -> Result<Vec<Share>> {
    policy.validate()?;
    let (model_share, _) = mul_div_floor(fee_wei, u128::from(policy.model_owner_bps), BPS);
    let (protocol_share, _) = mul_div_floor(fee_wei, u128::from(policy.protocol_bps), BPS);
    // The two shares are at most 10,000 bps of the fee together (validated above).
    let data_share = fee_wei
        .checked_sub(model_share)
        .and_then(|rest| rest.checked_sub(protocol_share))
        .ok_or_else(|| Error::Internal("the fixed shares exceed the fee".into()))?;
    let fixed = Share::fixed;
    // A share of 0 basis points is no payment (and may have no account).
    let mut shares = Vec::new();
    if policy.model_owner_bps > 0 {
        shares.push(fixed(policy.model_owner, Role::ModelOwner, model_share));
    }
    if policy.protocol_bps > 0 {
        shares.push(fixed(policy.protocol, Role::Protocol, protocol_share));
    }
    let paid: Vec<&WeightedSource> = sources.iter().filter(|s| s.weight > 0).collect();
    let total_weight = paid
        .iter()
        .try_fold(0u64, |sum, s| sum.checked_add(s.weight))
        .ok_or_else(|| Error::Invalid("source weights overflow".into()))?;
    if paid.is_empty() {
        if treasuries.is_empty() {
            return Err(Error::Invalid(
                "no source and no Datanet treasury to pay the data share to".into(),
            ));
        }
        let mut datanets: Vec<(DatanetId, Address)> = treasuries.to_vec();
        datanets.sort();
        datanets.dedup_by_key(|(id, _)| *id);
        let equal: Vec<(DatanetId, u64)> = datanets.iter().map(|(id, _)| (*id, 1)).collect();
        let amounts = largest_remainder(data_share, &equal);
        for ((datanet_id, to), amount_wei) in datanets.into_iter().zip(amounts) {
            shares.push(Share {
                to,
                role: Role::Treasury,
                source: None,
                datanet_id: Some(datanet_id),
                weight_ppm: 0,
                amount_wei,
            });
        }
        return Ok(shares);
    }
    // Per contributor first, so that only a contributor's total weight matters.
    let mut by_contributor: BTreeMap<Address, Vec<&WeightedSource>> = BTreeMap::new();
    for source in paid {
        by_contributor
            .entry(source.contributor)
            .or_default()
            .push(source);
    }
    let contributor_weights: Vec<(Address, u64)> = by_contributor
        .iter()
        .map(|(address, sources)| (*address, sources.iter().map(|s| s.weight).sum()))
        .collect();
    let contributor_amounts = largest_remainder(data_share, &contributor_weights);
    for ((_, mut sources), amount) in by_contributor.into_iter().zip(contributor_amounts) {
        sources.sort_by_key(|s| (s.record_id, s.chunk_id));
        let weights: Vec<((RecordId, u64), u64)> = sources
            .iter()
            .map(|s| ((s.record_id, s.chunk_id), s.weight))
            .collect();
        for (source, amount_wei) in sources.iter().zip(largest_remainder(amount, &weights)) {
            let (ppm, _) = mul_div_floor(
                1_000_000,
                u128::from(source.weight),
                u128::from(total_weight),
            );
            shares.push(Share {
                to: source.contributor,
                role: Role::Contributor,
                source: Some(**source),
                datanet_id: Some(source.datanet_id),
                weight_ppm: ppm as u32,
                amount_wei,
            });
        }
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(model_owner_bps: u16, protocol_bps: u16) -> SplitPolicy {
        SplitPolicy {
            model_owner: Address([0xaa; 20]),
            model_owner_bps,
            protocol: Address([0xbb; 20]),
            protocol_bps,
        }
    }

    fn source(record: u8, contributor: u8, weight: u64) -> WeightedSource {
        WeightedSource {
            record_id: RecordId([record; 32]),
            chunk_id: u64::from(record),
            datanet_id: 1,
            contributor: Address([contributor; 20]),
            weight,
        }
    }

    fn total_of(shares: &[Share], who: Address) -> u128 {
        shares
            .iter()
            .filter(|s| s.to == who)
            .map(|s| s.amount_wei)
            .sum()
    }

    fn sources() -> impl Strategy<Value = Vec<WeightedSource>> {
        prop::collection::vec((0u8..40, 1u8..6, 0u64..1_000_000), 0..12).prop_map(|v| {
            let mut seen = std::collections::HashSet::new();
            v.into_iter()
                .filter(|(r, _, _)| seen.insert(*r))
                .map(|(r, c, w)| source(r, c, w))
                .collect()
        })
    }

    #[test]
    fn a_worked_example() {
        let shares = split_fee(
            1_000,
            &policy(1_000, 500),
            &[source(1, 1, 2), source(2, 2, 1)],
            &[],
        )
        .unwrap();
        let amounts: Vec<u128> = shares.iter().map(|s| s.amount_wei).collect();
        // 100 to the model owner, 50 to the protocol, 850 as 2:1 = 566.67 / 283.33.
        assert_eq!(amounts, [100, 50, 567, 283]);
        assert_eq!(shares[2].weight_ppm, 666_666);
    }

    #[test]
    fn without_a_paid_source_the_treasuries_get_the_data_share() {
        let shares = split_fee(
            1_001,
            &policy(0, 0),
            &[source(1, 1, 0)],
            &[(2, Address([2; 20])), (1, Address([1; 20]))],
        )
        .unwrap();
        assert!(
            shares.iter().all(|s| s.role == Role::Treasury),
            "0 bps is no payment"
        );
        let treasury: Vec<(Option<u32>, u128)> = shares
            .iter()
            .filter(|s| s.role == Role::Treasury)
            .map(|s| (s.datanet_id, s.amount_wei))
            .collect();
        assert_eq!(treasury, [(Some(1), 501), (Some(2), 500)]);
        assert_eq!(total_of(&shares, Address([1; 20])), 501);
        assert!(split_fee(10, &policy(0, 0), &[], &[]).is_err());
        assert!(split_fee(10, &policy(9_000, 1_001), &[], &[(1, Address([1; 20]))]).is_err());
    }

    proptest! {
        #[test]
        fn shares_sum_to_the_fee_in_any_order(
            fee in any::<u128>(),
            model in 0u16..5_000,
            protocol in 0u16..5_000,
            sources in sources(),
            seed in any::<u64>(),
        ) {
            let treasuries = [(1, Address([9; 20]))];
            let shares = split_fee(fee, &policy(model, protocol), &sources, &treasuries).unwrap();
            prop_assert_eq!(shares.iter().map(|s| s.amount_wei).sum::<u128>(), fee);
            let mut shuffled = sources.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            let again = split_fee(fee, &policy(model, protocol), &shuffled, &treasuries).unwrap();
            let key = |s: &Share| (s.to, s.role, s.source.map(|x| x.record_id), s.amount_wei);
            let mut a: Vec<_> = shares.iter().map(key).collect();
            let mut b: Vec<_> = again.iter().map(key).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn splitting_a_record_into_copies_never_raises_its_contributors_total(
            fee in 0u128..1_000_000_000_000_000_000_000,
            sources in sources(),
            pick in any::<prop::sample::Index>(),
            parts in prop::collection::vec(1u64..1_000, 2..5),
        ) {
            let paid: Vec<&WeightedSource> = sources.iter().filter(|s| s.weight > 0).collect();
            prop_assume!(!paid.is_empty());
            let original = *paid[pick.index(paid.len())];
            let treasuries = [(1, Address([9; 20]))];
            let before = split_fee(fee, &policy(1_000, 500), &sources, &treasuries).unwrap();
            // Copies with new record ids (above the generated range) sharing its weight.
            let sum: u64 = parts.iter().sum();
            let mut weights: Vec<u64> =
                parts.iter().map(|p| original.weight * p / sum).collect();
            let rest = original.weight - weights.iter().sum::<u64>();
            weights[0] += rest;
            let mut split: Vec<WeightedSource> =
                sources.iter().filter(|s| s.record_id != original.record_id).copied().collect();
            for (i, weight) in weights.into_iter().enumerate() {
                split.push(WeightedSource {
                    weight,
                    ..source(100 + i as u8, original.contributor.0[0], 0)
                });
            }
            let after = split_fee(fee, &policy(1_000, 500), &split, &treasuries).unwrap();
            prop_assert!(
                total_of(&after, original.contributor) <= total_of(&before, original.contributor)
            );
        }
    }
}
