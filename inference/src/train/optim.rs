//! AdamW (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019,
//! <https://arxiv.org/abs/1711.05101>), as PyTorch's `torch.optim.AdamW` computes it, and
//! global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` does.
//!
//! Written here rather than taken from candle-nn, whose AdamW keeps its moments private: a
//! checkpoint needs them to resume exactly. Moments are plain f32 vectors, one pair per
//! variable in the order of [`LoraFactors::variables`](super::factors::LoraFactors), updated
//! element by element in a fixed order, so an update is deterministic.

/// First-moment decay.
pub const BETA1: f32 = 0.9;
/// Second-moment decay.
pub const BETA2: f32 = 0.999;
/// Added to the root of the second moment.
pub const EPSILON: f32 = 1e-8;

/// The moments of every variable and the number of updates made.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AdamW {
    /// `(exp_avg, exp_avg_sq)` per variable.
    pub(crate) moments: Vec<(Vec<f32>, Vec<f32>)>,
    /// Updates made so far (PyTorch's `step`, used for bias correction).
    pub(crate) updates: u64,
}

impl AdamW {
    /// Zero moments for variables of these sizes.
    pub(crate) fn new(sizes: impl Iterator<Item = usize>) -> Self {
        Self {
            moments: sizes.map(|n| (vec![0.0; n], vec![0.0; n])).collect(),
            updates: 0,
        }
    }

    /// One update of every variable's `values` by its `gradients`:
    /// `θ ← θ·(1 − lr·λ) − lr·m̂/(√v̂ + ε)`.
    pub(crate) fn update(
        &mut self,
        values: &mut [Vec<f32>],
        gradients: &[Vec<f32>],
        learning_rate: f32,
        weight_decay: f32,
    ) {
        self.updates += 1;
        let step = self.updates as i32;
        let correction1 = 1.0 - BETA1.powi(step);
        let correction2_root = (1.0 - BETA2.powi(step)).sqrt();
        let step_size = learning_rate / correction1;
        let decay = 1.0 - learning_rate * weight_decay;
        for ((theta, grad), (m, v)) in values.iter_mut().zip(gradients).zip(&mut self.moments) {
            for i in 0..theta.len() {
                let g = grad[i];
                m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                let denominator = v[i].sqrt() / correction2_root + EPSILON;
                theta[i] = theta[i] * decay - step_size * m[i] / denominator;
            }
        }
    }
}

/// The global L2 norm of all gradients (summed in f64, in order).
pub(crate) fn global_norm(gradients: &[Vec<f32>]) -> f32 {
    let squares: f64 = gradients
        .iter()
        .flatten()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum();
    squares.sqrt() as f32
}

/// Scales every gradient by `max_norm / (norm + 1e-6)` when the global norm exceeds
/// `max_norm`; returns the norm before clipping.
pub(crate) fn clip(gradients: &mut [Vec<f32>], max_norm: f32) -> f32 {
    let norm = global_norm(gradients);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        gradients.iter_mut().flatten().for_each(|g| *g *= factor);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_update_moves_each_value_by_the_learning_rate() {
        // With bias correction, step 1 gives m̂ = g and v̂ = g², so θ moves by lr·sign(g).
        let mut adam = AdamW::new([3].into_iter());
        let mut values = vec![vec![1.0, 1.0, 1.0]];
        adam.update(&mut values, &[vec![0.5, -2.0, 0.0]], 0.1, 0.0);
        let expected = [0.9, 1.1, 1.0];
        for (v, e) in values[0].iter().zip(expected) {
            assert!((v - e).abs() < 1e-6, "{v} vs {e}");
        }
        // Decoupled weight decay shrinks even where the gradient is zero.
        adam.update(&mut values, &[vec![0.0; 3]], 0.1, 0.5);
        assert!((values[0][2] - 0.95).abs() < 1e-6);
        assert_eq!(adam.updates, 2);
    }

    #[test]
    fn clipping_scales_to_the_threshold_only_when_above_it() {
        let mut gradients = vec![vec![3.0], vec![4.0]];
        assert_eq!(clip(&mut gradients, 10.0), 5.0);
        assert_eq!(gradients, vec![vec![3.0], vec![4.0]]);
        clip(&mut gradients, 1.0);
        assert!((global_norm(&gradients) - 1.0).abs() < 1e-5);
    }
}
