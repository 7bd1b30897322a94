//! A gradient store prepared for scoring answers: which training records' gradients, together,
//! make up an answer's gradient. The answer's unit gradient `q` is regressed on the records'
//! unit gradients `gᵢ` with a ridge: the scores `s` minimise `‖q − Σ sᵢ gᵢ‖² + λ‖s‖²`, i.e.
//! `s = (K + λI)⁻¹ G q` with `K = G Gᵀ` the records' cosine kernel (TRAK's
//! `(ΦᵀΦ)⁻¹`-preconditioned influence, Park et al. 2023, <https://arxiv.org/abs/2303.14186>,
//! in its kernel form, which needs only an `n × n` factorisation for `n` records).
//!
//! Why not plain similarity: every record's gradient shares directions (the chat template, the
//! end of turn, "this text is hard"), so raw cosines are positive for unrelated records and
//! large for high-loss noise; the regression credits a shared direction once, split among the
//! records that carry it, and a direction only one record carries to that record. Two identical
//! records split one record's score between them.
//!
//! Invariants: computed in f64 in a fixed order (the same scores on every machine and thread
//! count); `K + λI` is positive definite for `λ > 0`, so the factorisation cannot fail.

use super::gradients::GradientStore;

/// The ridge, relative to the kernel's unit diagonal.
pub const RIDGE: f64 = 0.1;

/// A store's unit gradients and the Cholesky factor of `K + λI`.
#[derive(Debug)]
pub struct GradientIndex {
    /// The store (its rows as written; ids and tokens).
    pub store: GradientStore,
    /// `1/‖gᵢ‖` per row (0 for a zero row).
    inverse_norms: Vec<f64>,
    /// Lower-triangular factor `L` of `K + λI`, row-major `n × n`.
    factor: Vec<f64>,
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

impl GradientIndex {
    /// Prepares `store` (`O(n²·dim)` once).
    pub fn new(store: GradientStore) -> Self {
        let n = store.header.rows;
        let inverse_norms: Vec<f64> = (0..n)
            .map(|i| {
                let norm = dot(store.row(i), store.row(i)).sqrt();
                if norm > 0.0 { 1.0 / norm } else { 0.0 }
            })
            .collect();
        let mut kernel = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..=i {
                let k = dot(store.row(i), store.row(j)) * inverse_norms[i] * inverse_norms[j];
                kernel[i * n + j] = k;
                kernel[j * n + i] = k;
            }
            kernel[i * n + i] += RIDGE;
        }
        Self {
            factor: cholesky(kernel, n),
            inverse_norms,
            store,
        }
    }

    /// Each record's score for an answer whose gradient is `query` (see the module docs).
    pub fn scores(&self, query: &[f32]) -> Vec<f64> {
        let n = self.store.header.rows;
        let query_norm = dot(query, query).sqrt();
        if query_norm == 0.0 {
            return vec![0.0; n];
        }
        let mut b: Vec<f64> = (0..n)
            .map(|i| dot(self.store.row(i), query) * self.inverse_norms[i] / query_norm)
            .collect();
        // L y = b, then Lᵀ s = y.
        let l = &self.factor;
        for i in 0..n {
            let sum: f64 = (0..i).map(|k| l[i * n + k] * b[k]).sum();
            b[i] = (b[i] - sum) / l[i * n + i];
        }
        for i in (0..n).rev() {
            let sum: f64 = (i + 1..n).map(|k| l[k * n + i] * b[k]).sum();
            b[i] = (b[i] - sum) / l[i * n + i];
        }
        b
    }
}

/// The lower Cholesky factor of the symmetric positive-definite `a` (`n × n`, row-major).
fn cholesky(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for j in 0..n {
        let diagonal = a[j * n + j] - (0..j).map(|k| a[j * n + k] * a[j * n + k]).sum::<f64>();
        let pivot = diagonal.max(f64::MIN_POSITIVE).sqrt();
        a[j * n + j] = pivot;
        for i in j + 1..n {
            let sum: f64 = (0..j).map(|k| a[i * n + k] * a[j * n + k]).sum();
            a[i * n + j] = (a[i * n + j] - sum) / pivot;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::gradients::{GradientHeader, METHOD};
    use super::*;
    use crate::train::GradientProjection;

    fn store(rows: &[[f32; 3]]) -> GradientStore {
        GradientStore {
            header: GradientHeader {
                method: METHOD.into(),
                projection: GradientProjection::default(),
                dim: 3,
                rows: rows.len(),
                records_root: String::new(),
            },
            record_ids: vec![[0; 32]; rows.len()],
            tokens: vec![1; rows.len()],
            values: rows.concat(),
        }
    }

    #[test]
    fn a_direction_one_record_carries_is_credited_to_it() {
        // Rows 0 and 1 share a common direction (x); row 2 alone carries z.
        let index =
            GradientIndex::new(store(&[[1.0, 0.2, 0.0], [1.0, -0.2, 0.0], [0.3, 0.0, 1.0]]));
        let scores = index.scores(&[0.0, 0.0, 2.0]);
        assert!(scores[2] > 0.5, "{scores:?}");
        assert!(scores[0] < scores[2] && scores[1] < scores[2], "{scores:?}");
        // Solving is exact: (K + λI) s = G q.
        let single = GradientIndex::new(store(&[[0.0, 0.0, 1.0]]));
        let s = single.scores(&[0.0, 0.0, 5.0]);
        assert!((s[0] - 1.0 / (1.0 + RIDGE)).abs() < 1e-12, "{s:?}");
        // A copy: the two split what one earned (a little more in all, from the ridge).
        let copied = GradientIndex::new(store(&[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]));
        let s2 = copied.scores(&[0.0, 0.0, 5.0]);
        assert!((s2[0] - s2[1]).abs() < 1e-12);
        assert!(s2[0] + s2[1] < 2.0 * s[0], "{s2:?} vs {s:?}");
        assert!(s2[0] + s2[1] <= 1.0, "{s2:?}");
    }
}
