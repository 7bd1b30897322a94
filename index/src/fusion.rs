//! Score fusion of ranked lists from several retrievers.
//!
//! - Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): a document's score is
//!   `Σ weight_r / (k + rank_r)` over the lists `r` that hold it (ranks from 1). It reads
//!   ranks only, so it does not depend on how each retriever scales its scores.
//! - Weighted sum of min-max-normalised scores: each list's scores are mapped to `0..=1`
//!   (a list whose scores are all equal maps to 1), then summed with the weights.
//!
//! Invariants: inputs are lists of `(ordinal, score)` in any order, each ordinal at most once
//! per list; outputs are sorted by fused score, ties broken by ordinal, so they are
//! deterministic.

use std::collections::HashMap;

/// A scored ordinal: higher scores are better.
pub type Scored = (u32, f32);

/// One retriever's contribution: its scored candidates and its weight.
#[derive(Clone, Copy, Debug)]
pub struct Ranked<'a> {
    /// Candidates with the retriever's scores (higher is better).
    pub scored: &'a [Scored],
    /// Weight of this retriever (non-negative).
    pub weight: f32,
}

/// Sorts candidates best first: by score, then ordinal.
pub fn sort_best_first(list: &mut [Scored]) {
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}

/// Reciprocal rank fusion with constant `k`.
pub fn rrf(lists: &[Ranked<'_>], k: f32) -> Vec<Scored> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        let mut ranked = list.scored.to_vec();
        sort_best_first(&mut ranked);
        for (rank, (ordinal, _)) in ranked.iter().enumerate() {
            *fused.entry(*ordinal).or_insert(0.0) += list.weight / (k + rank as f32 + 1.0);
        }
    }
    finish(fused)
}

/// Weighted sum of min-max-normalised scores.
pub fn weighted_sum(lists: &[Ranked<'_>]) -> Vec<Scored> {
    let mut fused: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        let (min, max) = list
            .scored
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, s)| {
                (lo.min(*s), hi.max(*s))
            });
        let span = max - min;
        for (ordinal, score) in list.scored {
            let normalised = if span > 0.0 {
                (score - min) / span
            } else {
                1.0
            };
            *fused.entry(*ordinal).or_insert(0.0) += list.weight * normalised;
        }
    }
    finish(fused)
}

fn finish(fused: HashMap<u32, f32>) -> Vec<Scored> {
    let mut out: Vec<Scored> = fused.into_iter().collect();
    sort_best_first(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn list() -> impl Strategy<Value = Vec<Scored>> {
        prop::collection::btree_map(0u32..200, -50.0f32..50.0, 1..40)
            .prop_map(|m| m.into_iter().collect())
    }

    fn order(list: &[Scored]) -> Vec<u32> {
        list.iter().map(|(o, _)| *o).collect()
    }

    proptest! {
        #[test]
        fn rrf_order_is_invariant_to_scaling_each_retrievers_scores(
            a in list(), b in list(), scale_a in 0.001f32..1000.0, scale_b in 0.001f32..1000.0,
            shift in -100.0f32..100.0, k in 1.0f32..100.0,
        ) {
            let scaled_a: Vec<Scored> = a.iter().map(|(o, s)| (*o, s * scale_a + shift)).collect();
            let scaled_b: Vec<Scored> = b.iter().map(|(o, s)| (*o, s * scale_b)).collect();
            let plain = rrf(&[Ranked { scored: &a, weight: 1.0 }, Ranked { scored: &b, weight: 0.5 }], k);
            let scaled = rrf(&[Ranked { scored: &scaled_a, weight: 1.0 }, Ranked { scored: &scaled_b, weight: 0.5 }], k);
            // Scaling may merge two nearly equal scores into one float; compare where ranks are unambiguous.
            let distinct = |l: &[Scored], m: &[Scored]| {
                let mut x = l.to_vec(); sort_best_first(&mut x);
                let mut y = m.to_vec(); sort_best_first(&mut y);
                order(&x) == order(&y)
            };
            prop_assume!(distinct(&a, &scaled_a) && distinct(&b, &scaled_b));
            prop_assert_eq!(order(&plain), order(&scaled));
        }

        #[test]
        fn a_document_first_in_both_lists_is_first(
            a in list(), b in list(), k in 1.0f32..100.0, wa in 0.1f32..10.0, wb in 0.1f32..10.0,
        ) {
            let top = 1000u32;
            let best_a = a.iter().map(|(_, s)| *s).fold(f32::NEG_INFINITY, f32::max) + 1.0;
            let best_b = b.iter().map(|(_, s)| *s).fold(f32::NEG_INFINITY, f32::max) + 1.0;
            let mut a = a; a.push((top, best_a));
            let mut b = b; b.push((top, best_b));
            let fused = rrf(&[Ranked { scored: &a, weight: wa }, Ranked { scored: &b, weight: wb }], k);
            prop_assert_eq!(fused[0].0, top);
            let summed = weighted_sum(&[Ranked { scored: &a, weight: wa }, Ranked { scored: &b, weight: wb }]);
            prop_assert_eq!(summed[0].0, top);
        }

        #[test]
        fn fused_lists_hold_every_candidate_once(a in list(), b in list()) {
            let fused = rrf(&[Ranked { scored: &a, weight: 1.0 }, Ranked { scored: &b, weight: 1.0 }], 60.0);
            let mut expected: Vec<u32> = a.iter().chain(&b).map(|(o, _)| *o).collect();
            expected.sort_unstable();
            expected.dedup();
            let mut got = order(&fused);
            got.sort_unstable();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn weighted_sum_normalises_each_list_to_unit_range() {
        let bm25 = [(1, 12.0), (2, 6.0), (3, 0.0)];
        let vector = [(3, 0.9), (2, 0.5), (1, 0.1)];
        let fused = weighted_sum(&[
            Ranked {
                scored: &bm25,
                weight: 1.0,
            },
            Ranked {
                scored: &vector,
                weight: 1.0,
            },
        ]);
        assert_eq!(fused.len(), 3);
        assert!((fused[0].1 - 1.0).abs() < 1e-6);
        assert!(
            (fused
                .iter()
                .find(|(o, _)| *o == 2)
                .map(|x| x.1)
                .unwrap_or(0.0)
                - 1.0)
                .abs()
                < 1e-6
        );
    }
}
