//! Per-example gradients of the LoRA factors, projected to a few numbers per factor, from one
//! batched backward pass: what training-data influence (TracIn, TRAK, LoGra) is computed from.
//!
//! Method (LoGra's, Choe et al. 2024, <https://arxiv.org/abs/2405.13954>, on LoRA's
//! structure): for a targeted module `out = x·Wᵀ + s·(x·Aᵀ)·Bᵀ`, with `h = x·Aᵀ` (`rank` wide),
//! one example's gradients are sums over its tokens of outer products,
//! `∂L/∂A = Σₜ (∂L/∂hₜ) xₜᵀ` and `∂L/∂B = s·Σₜ (∂L/∂outₜ) hₜᵀ`. They are projected with two
//! seeded random matrices per factor, `P_in` (`width × input`) and `P_out` (`width × output`),
//! entries `±1/√width`: the A part becomes `Σₜ (∂L/∂hₜ)(P_in xₜ)ᵀ` (`rank × width`) and the B
//! part `s·Σₜ (P_out ∂L/∂outₜ) hₜᵀ` (`width × rank`), exactly `∂L/∂A·P_inᵀ` and `P_out·∂L/∂B`
//! (Kronecker-structured projections of the full gradient). `∂L/∂h` and `∂L/∂out` come from
//! zero-valued probe variables added at those two points of the forward pass, so one backward
//! over a padded batch gives every example's gradient at once (pads carry no loss, so no
//! gradient).
//!
//! Invariants: the projection is a function of (seed, factor index, width) only; an example's
//! gradient is that of its own mean loss over its response tokens, whatever batch it was in;
//! the layout is fixed: factors in training order, each its A part (`rank × width`, row-major)
//! then its B part (`width × rank`).

use std::cell::RefCell;

use candle_core::{DType, Device, Tensor, Var};

use super::rng::{SplitMix64, Stream};

/// How gradients are projected: stored with them, so that an answer's gradient is projected
/// the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GradientProjection {
    /// The seed of the random matrices.
    pub seed: u64,
    /// Rows of each projection matrix (`P_in` and `P_out`): a factor gives `2·rank·width`
    /// numbers.
    pub width: usize,
}

impl Default for GradientProjection {
    fn default() -> Self {
        Self { seed: 0, width: 8 }
    }
}

/// Largest projection width accepted.
pub const MAX_PROJECTION_WIDTH: usize = 256;

/// `width × columns` entries `±1/√width`, row-major, from `rng`.
fn rademacher(rng: &mut SplitMix64, width: usize, columns: usize) -> Vec<f32> {
    let magnitude = 1.0 / (width as f32).sqrt();
    let mut out = Vec::with_capacity(width * columns);
    while out.len() < width * columns {
        let bits = rng.next_u64();
        for bit in 0..64.min(width * columns - out.len()) {
            out.push(if bits >> bit & 1 == 1 {
                magnitude
            } else {
                -magnitude
            });
        }
    }
    out
}

/// `P_in` (`width × input`) and `P_out` (`width × output`) of factor `index`.
pub(crate) fn projection_matrices(
    projection: &GradientProjection,
    index: usize,
    input: usize,
    output: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut rng = SplitMix64::new(projection.seed, Stream::Projection(index as u64));
    let width = projection.width;
    let p_in = rademacher(&mut rng, width, input);
    let p_out = rademacher(&mut rng, width, output);
    Ok((
        Tensor::from_vec(p_in, (width, input), &Device::Cpu)?,
        Tensor::from_vec(p_out, (width, output), &Device::Cpu)?,
    ))
}

/// What one targeted module saw in a probed forward pass.
struct Probe {
    /// Its input, `[rows·length, input]` (detached).
    x: Tensor,
    /// `x·Aᵀ`, `[rows·length, rank]` (detached).
    h: Tensor,
    /// Zero, added to `h`: its gradient is `∂L/∂h`.
    at_h: Var,
    /// Zero, added to the module's output: its gradient is `∂L/∂out`.
    at_out: Var,
}

/// The probes of one forward pass, by factor index.
pub(crate) struct Probes {
    probes: RefCell<Vec<Option<Probe>>>,
}

impl Probes {
    pub(crate) fn new(factors: usize) -> Self {
        Self {
            probes: RefCell::new((0..factors).map(|_| None).collect()),
        }
    }

    /// The LoRA delta of factor `index` on `x`, probed: `(h + 0)·s·Bᵀ`, returned with the
    /// zero to add to the module's output.
    pub(crate) fn delta(
        &self,
        index: usize,
        x: &Tensor,
        a: &Tensor,
        b: &Tensor,
        scale: f32,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let h = x.matmul(&a.t()?)?;
        let at_h = Var::zeros(h.shape(), DType::F32, &Device::Cpu)?;
        let delta = (&h + at_h.as_tensor())?
            .affine(f64::from(scale), 0.0)?
            .matmul(&b.t()?)?;
        let at_out = Var::zeros(delta.shape(), DType::F32, &Device::Cpu)?;
        let zero = at_out.as_tensor().clone();
        let probe = Probe {
            x: x.detach(),
            h: h.detach(),
            at_h,
            at_out,
        };
        let mut probes = self.probes.borrow_mut();
        if let Some(slot) = probes.get_mut(index) {
            *slot = Some(probe);
        }
        Ok((delta, zero))
    }

    /// Every example's projected gradient of its own mean loss from the backward pass `grads`
    /// over `batch`, whose summed loss was differentiated divided by `divided_by` (1, or a
    /// step's loss tokens): one row per example.
    pub(crate) fn per_example(
        &self,
        grads: &candle_core::backprop::GradStore,
        projection: &GradientProjection,
        scale: f32,
        batch: &super::data::Batch,
        divided_by: f32,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let weights: Vec<f32> = batch
            .row_loss_tokens()
            .iter()
            .map(|&n| divided_by / n.max(1) as f32)
            .collect();
        self.projected(grads, projection, scale, batch.rows, batch.length, &weights)
    }

    /// Every example's projected gradient from the backward pass `grads` over a batch of
    /// `rows × length`: one row per example, each multiplied by `weights[row]`.
    fn projected(
        &self,
        grads: &candle_core::backprop::GradStore,
        projection: &GradientProjection,
        scale: f32,
        rows: usize,
        length: usize,
        weights: &[f32],
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let probes = self.probes.borrow();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); rows];
        for (index, probe) in probes.iter().enumerate() {
            let Some(probe) = probe else { continue };
            let (input, output) = (probe.x.dim(1)?, probe.at_out.dim(1)?);
            let rank = probe.h.dim(1)?;
            let (p_in, p_out) = projection_matrices(projection, index, input, output)?;
            let zeros_h;
            let d_h = match grads.get(probe.at_h.as_tensor()) {
                Some(g) => g,
                None => {
                    zeros_h = probe.h.zeros_like()?;
                    &zeros_h
                }
            };
            let zeros_out;
            let d_out = match grads.get(probe.at_out.as_tensor()) {
                Some(g) => g,
                None => {
                    zeros_out = probe.at_out.as_tensor().zeros_like()?;
                    &zeros_out
                }
            };
            let width = projection.width;
            // A part: per row, (∂L/∂h)ᵀ · (x·P_inᵀ): [rank, width].
            let x_projected = probe.x.matmul(&p_in.t()?)?.reshape((rows, length, width))?;
            let a_part = d_h
                .reshape((rows, length, rank))?
                .transpose(1, 2)?
                .contiguous()?
                .matmul(&x_projected)?;
            // B part: per row, s · (∂L/∂out·P_outᵀ)ᵀ · h: [width, rank].
            let out_projected = d_out
                .matmul(&p_out.t()?)?
                .reshape((rows, length, width))?
                .transpose(1, 2)?
                .contiguous()?;
            let b_part = out_projected
                .matmul(&probe.h.reshape((rows, length, rank))?)?
                .affine(f64::from(scale), 0.0)?;
            let a_rows = a_part.reshape((rows, rank * width))?.to_vec2::<f32>()?;
            let b_rows = b_part.reshape((rows, width * rank))?.to_vec2::<f32>()?;
            for (row, (a, b)) in a_rows.into_iter().zip(b_rows).enumerate() {
                let weight = weights.get(row).copied().unwrap_or(1.0);
                out[row].extend(a.into_iter().chain(b).map(|v| v * weight));
            }
        }
        Ok(out)
    }
}

/// Cosine similarity of two projected gradients (0 when either is zero), in f64 in index order:
/// the same bits on every machine and thread count.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    dot / (aa.sqrt() * bb.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_are_fixed_by_seed_and_factor_and_scaled() {
        let p = GradientProjection { seed: 3, width: 4 };
        let (a, b) = projection_matrices(&p, 5, 10, 6).unwrap();
        let (a2, b2) = projection_matrices(&p, 5, 10, 6).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), a2.to_vec2::<f32>().unwrap());
        assert_eq!(b.to_vec2::<f32>().unwrap(), b2.to_vec2::<f32>().unwrap());
        let (other, _) = projection_matrices(&p, 6, 10, 6).unwrap();
        assert_ne!(a.to_vec2::<f32>().unwrap(), other.to_vec2::<f32>().unwrap());
        let values = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values.iter().all(|v| (v.abs() - 0.5).abs() < 1e-7));
        let positive = values.iter().filter(|v| **v > 0.0).count();
        assert!((10..=30).contains(&positive), "{positive} of 40 positive");
    }

    #[test]
    fn cosine_is_bounded_and_zero_for_a_zero_vector() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
