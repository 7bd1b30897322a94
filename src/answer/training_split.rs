//! What the adapters of an answer pay their training contributors, in exact integers.
//!
//! Each adapter's part of the fee (after the protocol's cut) sets aside its training share,
//! `bps` of it (rounded down). The training shares of all the answer's adapters together are
//! split between the adapters' [`TrainingPool`]s by each adapter's weight in the mix (largest
//! remainder), then within a pool over its contributors by their weights (influence, or tokens
//! for an adapter without a gradient store; largest remainder, ties to the lower address).
//! What a pool cannot pay (none of its contributors is weighted: no record's influence stood
//! above the noise) goes to its adapter's owner with the rest of the adapter's part, never to
//! a record that did not help.
//!
//! Invariants (property-tested): every adapter's part is paid out exactly (to training
//! contributors and owners); a pool is paid only in proportion to its mix weight; an adapter
//! at weight 0 pays its training share to the others' pools (it did not make the answer).

use provdb_storage::{Address, DatanetId, Role};

use crate::answer::split::{BPS, Share, largest_remainder, mul_div_floor};
use crate::error::{Error, Result};

/// What an adapter's training data earns from an answer made with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingPool {
    /// Basis points of the adapter's part set aside for its training data.
    pub bps: u16,
    /// The adapter's weight in the mix (|weight| × 10⁶; only ratios between pools matter).
    pub mix_weight: u64,
    /// The Datanet it trained on (its entries are visible to who may read it).
    pub datanet_id: Option<DatanetId>,
    /// Its training contributors with their weights (tokens, or influence).
    pub contributors: Vec<(Address, u64)>,
}

impl TrainingPool {
    fn payable(&self) -> Vec<(Address, u64)> {
        let mut contributors: Vec<(Address, u64)> = self
            .contributors
            .iter()
            .filter(|c| c.1 > 0)
            .copied()
            .collect();
        contributors.sort();
        contributors
    }
}

/// One adapter's part to split: its pool (None: not trained on records) and what is left of
/// its price after the protocol's cut.
pub(crate) struct AdapterPart<'a> {
    pub(crate) pool: Option<&'a TrainingPool>,
    pub(crate) rest: u128,
}

/// The training contributors' shares of `parts`, and what is left for each adapter's owner.
pub(crate) fn pay_training(parts: &[AdapterPart<'_>]) -> Result<(Vec<Share>, Vec<u128>)> {
    let mut left = Vec::with_capacity(parts.len());
    let mut set_aside = 0u128;
    for part in parts {
        let bps = part.pool.map_or(0, |p| p.bps);
        if u128::from(bps) > BPS {
            return Err(Error::Invalid(format!(
                "a training share of {bps} basis points exceeds 10000"
            )));
        }
        let (training, _) = mul_div_floor(part.rest, u128::from(bps), BPS);
        set_aside = set_aside
            .checked_add(training)
            .ok_or_else(|| Error::Invalid("training shares overflow".into()))?;
        left.push(part.rest - training);
    }
    // The pools in the mix, by index into `parts`, with their mix weights.
    let mixed: Vec<(usize, u64)> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.pool
                .filter(|p| p.mix_weight > 0)
                .map(|p| (i, p.mix_weight))
        })
        .collect();
    if mixed.is_empty() {
        // No pool in the mix: each owner keeps its own training share.
        for (part, left) in parts.iter().zip(&mut left) {
            *left = part.rest;
        }
        return Ok((Vec::new(), left));
    }
    mixed
        .iter()
        .try_fold(0u64, |sum, (_, w)| sum.checked_add(*w))
        .ok_or_else(|| Error::Invalid("adapter mix weights overflow".into()))?;
    let mut shares = Vec::new();
    for (&(index, _), portion) in mixed.iter().zip(largest_remainder(set_aside, &mixed)) {
        let Some(pool) = parts[index].pool else {
            continue;
        };
        let contributors = pool.payable();
        if contributors.is_empty() {
            left[index] += portion;
            continue;
        }
        let total = contributors
            .iter()
            .try_fold(0u64, |sum, c| sum.checked_add(c.1))
            .ok_or_else(|| Error::Invalid("training contributor weights overflow".into()))?;
        for ((to, weight), amount_wei) in contributors
            .iter()
            .zip(largest_remainder(portion, &contributors))
        {
            shares.push(Share {
                to: *to,
                role: Role::TrainingContributor,
                source: None,
                datanet_id: pool.datanet_id,
                weight_ppm: ((u128::from(*weight) * 1_000_000) / u128::from(total)) as u32,
                amount_wei,
            });
        }
    }
    Ok((shares, left))
}

/// An adapter's mix weight as a pool's integer weight (|weight| × 10⁶, rounded).
pub(crate) fn mix_weight(weight: f32) -> u64 {
    (f64::from(weight).abs() * 1e6).round().min(u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pool(bps: u16, mix_weight: u64, contributors: &[(u8, u64)]) -> TrainingPool {
        TrainingPool {
            bps,
            mix_weight,
            datanet_id: Some(7),
            contributors: contributors
                .iter()
                .map(|&(a, w)| (Address([a; 20]), w))
                .collect(),
        }
    }

    fn paid(shares: &[Share], to: u8) -> u128 {
        shares
            .iter()
            .filter(|s| s.to == Address([to; 20]))
            .map(|s| s.amount_wei)
            .sum()
    }

    #[test]
    fn the_training_shares_are_split_between_adapters_by_mix_weight() {
        // A at 0.7 and B at 0.3, each priced 1000 with a 20 % training share: 400 in all,
        // 280 to A's contributors (3:1) and 120 to B's.
        let a = pool(2_000, mix_weight(0.7), &[(5, 3), (6, 1)]);
        let b = pool(2_000, mix_weight(-0.3), &[(7, 9)]);
        let parts = [
            AdapterPart {
                pool: Some(&a),
                rest: 1_000,
            },
            AdapterPart {
                pool: Some(&b),
                rest: 1_000,
            },
        ];
        let (shares, left) = pay_training(&parts).unwrap();
        assert_eq!(
            (paid(&shares, 5), paid(&shares, 6), paid(&shares, 7)),
            (210, 70, 120)
        );
        assert_eq!(left, [800, 800]);
        assert_eq!(shares[0].weight_ppm, 750_000);
        assert_eq!(shares[0].datanet_id, Some(7));
    }

    #[test]
    fn a_pool_with_no_influence_leaves_its_portion_to_its_owner() {
        let a = pool(5_000, 1, &[(5, 0)]);
        let b = pool(5_000, 1, &[(6, 1)]);
        let untrained = AdapterPart {
            pool: None,
            rest: 10,
        };
        let parts = [
            AdapterPart {
                pool: Some(&a),
                rest: 100,
            },
            AdapterPart {
                pool: Some(&b),
                rest: 100,
            },
            untrained,
        ];
        let (shares, left) = pay_training(&parts).unwrap();
        assert_eq!(paid(&shares, 6), 50);
        assert_eq!(paid(&shares, 5), 0);
        assert_eq!(left, [50 + 50, 50, 10]);
        // Weight 0 for every pool: each owner keeps its part.
        let a = pool(5_000, 0, &[(5, 1)]);
        let (shares, left) = pay_training(&[AdapterPart {
            pool: Some(&a),
            rest: 100,
        }])
        .unwrap();
        assert!(shares.is_empty());
        assert_eq!(left, [100]);
        let over = pool(10_001, 1, &[(5, 1)]);
        assert!(
            pay_training(&[AdapterPart {
                pool: Some(&over),
                rest: 1
            }])
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn every_part_is_paid_out_exactly(
            parts in prop::collection::vec(
                (0u128..1u128 << 100, 0u16..=10_000, 0u64..1_000_000,
                 prop::collection::vec((1u8..9, 0u64..100_000), 0..5), any::<bool>()),
                0..4,
            ),
        ) {
            let pools: Vec<TrainingPool> =
                parts.iter().map(|(_, bps, w, c, _)| pool(*bps, *w, c)).collect();
            let parts: Vec<AdapterPart<'_>> = parts
                .iter()
                .zip(&pools)
                .map(|((rest, .., trained), p)| AdapterPart {
                    pool: trained.then_some(p),
                    rest: *rest,
                })
                .collect();
            let (shares, left) = pay_training(&parts).unwrap();
            let paid: u128 = shares.iter().map(|s| s.amount_wei).sum::<u128>() + left.iter().sum::<u128>();
            prop_assert_eq!(paid, parts.iter().map(|p| p.rest).sum::<u128>());
            for (part, left) in parts.iter().zip(&left) {
                let bps = part.pool.map_or(0, |p| p.bps);
                prop_assert!(*left >= part.rest - part.rest * u128::from(bps) / BPS);
            }
        }
    }
}
