//! Fused training ops with their own backward: RMSNorm, rotary embedding into head layout,
//! causal softmax, SwiGLU and next-token cross-entropy.
//!
//! candle's fused `rms_norm`, `softmax_last_dim` and `rope` have no backward, and composing
//! them from elementary ops costs a full pass over the activations per op, forward and
//! backward, plus candle's gradient accumulation (a zero tensor and an add per op). Each op
//! here is one pass forward and one backward, row-parallel on rayon. The arithmetic of each
//! forward is the composed version's, in the same order (every output is computed by one
//! thread, sequentially), so results are deterministic and independent of the thread count;
//! the unit tests compare every op, forward and backward, with its composition from candle
//! ops.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

type Result<T> = candle_core::Result<T>;

/// The contiguous f32 values of a storage seen through `layout`.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(values), Some((start, end))) => Ok(&values[start..end]),
        _ => candle_core::bail!("{op}: contiguous f32 input expected"),
    }
}

/// Runs `f` over the contiguous f32 values of `tensor` (made contiguous first if needed).
fn read<R>(tensor: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(storage) = &*storage else {
        candle_core::bail!("{op}: CPU tensors only")
    };
    f(values(storage, layout, op)?)
}

fn output(values: Vec<f32>, shape: impl Into<Shape>) -> Result<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(values), shape.into()))
}

/// `x · r · w` per row, `r = 1/√(mean(x²) + eps)`; the weight is frozen (no gradient).
pub(crate) struct RmsNorm {
    pub(crate) weight: Arc<[f32]>,
    pub(crate) eps: f32,
}

impl RmsNorm {
    fn inverse_rms(&self, row: &[f32]) -> f32 {
        let sum: f32 = row.iter().map(|v| v * v).sum();
        1.0 / (sum / row.len() as f32 + self.eps).sqrt()
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "train-rms-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, self.name())?;
        let width = self.weight.len();
        if layout.dims().last() != Some(&width) {
            candle_core::bail!("rms-norm: rows of {:?}, weight of {width}", layout.dims())
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(width)
            .zip(x.par_chunks(width))
            .for_each(|(out, row)| {
                let inverse = self.inverse_rms(row);
                for ((o, &v), &w) in out.iter_mut().zip(row).zip(self.weight.iter()) {
                    *o = v * inverse * w;
                }
            });
        output(out, layout.shape().clone())
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // dx = r·w⊙g − x · r³/n · Σ(w⊙g⊙x)
        let width = self.weight.len();
        let dx = read(arg, self.name(), |x| {
            read(grad, self.name(), |g| {
                let mut dx = vec![0f32; x.len()];
                dx.par_chunks_mut(width)
                    .zip(x.par_chunks(width).zip(g.par_chunks(width)))
                    .for_each(|(dx, (x, g))| {
                        let inverse = self.inverse_rms(x);
                        let dot: f32 = x
                            .iter()
                            .zip(g)
                            .zip(self.weight.iter())
                            .map(|((x, g), w)| x * g * w)
                            .sum();
                        let k = inverse * inverse * inverse * dot / width as f32;
                        for (((d, &x), &g), &w) in
                            dx.iter_mut().zip(x).zip(g).zip(self.weight.iter())
                        {
                            *d = inverse * w * g - x * k;
                        }
                    });
                Ok(dx)
            })
        })?;
        Tensor::from_vec(dx, arg.shape(), arg.device()).map(Some)
    }
}

/// Rotary embedding on adjacent pairs, from `[rows·length, heads·head_dim]` (a linear layer's
/// output) to `[rows, heads, length, head_dim]` (attention's layout) in one pass.
pub(crate) struct Rope {
    /// `cos` and `sin` of every position's pair angles: `[length, head_dim / 2]`.
    pub(crate) cos: Arc<[f32]>,
    pub(crate) sin: Arc<[f32]>,
    pub(crate) rows: usize,
    pub(crate) length: usize,
    pub(crate) heads: usize,
    pub(crate) head_dim: usize,
}

impl Rope {
    /// Every `(row, head)` block of the output is `length × head_dim`, read from positions of
    /// the input: `f(input_row, output_block)` for each block, in parallel.
    fn for_each_block(&self, out: &mut [f32], f: impl Fn(usize, usize, &mut [f32]) + Sync) {
        let block = self.length * self.head_dim;
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(index, block)| f(index / self.heads, index % self.heads, block));
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "train-rope"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = values(storage, layout, self.name())?;
        let (d, half, width) = (self.head_dim, self.head_dim / 2, self.heads * self.head_dim);
        if x.len() != self.rows * self.length * width {
            candle_core::bail!("rope: {} values for {:?}", x.len(), layout.dims())
        }
        let mut out = vec![0f32; x.len()];
        self.for_each_block(&mut out, |row, head, block| {
            for (t, out) in block.chunks_exact_mut(d).enumerate() {
                let input = &x[(row * self.length + t) * width + head * d..][..d];
                let (cos, sin) = (&self.cos[t * half..][..half], &self.sin[t * half..][..half]);
                for i in 0..half {
                    let (even, odd) = (input[2 * i], input[2 * i + 1]);
                    out[2 * i] = even * cos[i] - odd * sin[i];
                    out[2 * i + 1] = even * sin[i] + odd * cos[i];
                }
            }
        });
        output(out, (self.rows, self.heads, self.length, d))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The transpose of a rotation is the rotation by −θ, back into the input's layout.
        let (d, half, width) = (self.head_dim, self.head_dim / 2, self.heads * self.head_dim);
        let dx = read(grad, self.name(), |g| {
            let mut dx = vec![0f32; g.len()];
            dx.par_chunks_mut(self.length * width)
                .enumerate()
                .for_each(|(row, dx)| {
                    for (t, dx) in dx.chunks_exact_mut(width).enumerate() {
                        let (cos, sin) =
                            (&self.cos[t * half..][..half], &self.sin[t * half..][..half]);
                        for (head, dx) in dx.chunks_exact_mut(d).enumerate() {
                            let g = &g[((row * self.heads + head) * self.length + t) * d..][..d];
                            for i in 0..half {
                                let (even, odd) = (g[2 * i], g[2 * i + 1]);
                                dx[2 * i] = even * cos[i] + odd * sin[i];
                                dx[2 * i + 1] = odd * cos[i] - even * sin[i];
                            }
                        }
                    }
                });
            Ok(dx)
        })?;
        Tensor::from_vec(dx, arg.shape(), arg.device()).map(Some)
    }
}

/// `softmax(scale · s)` over the last dimension under a causal mask: the last two dimensions
/// are `[queries, length]` with query row `q` at position `q % length` (several heads' queries
/// may be stacked, as grouped-query attention does); keys after the position get 0.
pub(crate) struct CausalSoftmax {
    pub(crate) scale: f32,
    pub(crate) length: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "train-causal-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let s = values(storage, layout, self.name())?;
        let length = self.length;
        if layout.dims().last() != Some(&length) || layout.dims().len() < 2 {
            candle_core::bail!("causal-softmax: {:?} for length {length}", layout.dims())
        }
        let queries = layout.dims()[layout.dims().len() - 2];
        let mut out = vec![0f32; s.len()];
        out.par_chunks_mut(length)
            .zip(s.par_chunks(length))
            .enumerate()
            .for_each(|(index, (out, s))| {
                let visible = index % queries % length + 1;
                let max = s[..visible]
                    .iter()
                    .map(|v| v * self.scale)
                    .fold(f32::NEG_INFINITY, f32::max);
                let mut total = 0f32;
                for (o, v) in out[..visible].iter_mut().zip(s) {
                    *o = (v * self.scale - max).exp();
                    total += *o;
                }
                out[..visible].iter_mut().for_each(|o| *o /= total);
            });
        output(out, layout.shape().clone())
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // ds = scale · y ⊙ (g − Σ g⊙y); zero where y is (masked keys).
        let length = self.length;
        let ds = read(res, self.name(), |y| {
            read(grad, self.name(), |g| {
                let mut ds = vec![0f32; y.len()];
                ds.par_chunks_mut(length)
                    .zip(y.par_chunks(length).zip(g.par_chunks(length)))
                    .for_each(|(ds, (y, g))| {
                        let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                        for ((d, &y), &g) in ds.iter_mut().zip(y).zip(g) {
                            *d = self.scale * y * (g - dot);
                        }
                    });
                Ok(ds)
            })
        })?;
        Tensor::from_vec(ds, arg.shape(), arg.device()).map(Some)
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// `silu(gate) ⊙ up`, SwiGLU's product.
pub(crate) struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "train-swiglu"
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (gate, up) = (
            values(gate, gate_layout, self.name())?,
            values(up, up_layout, self.name())?,
        );
        if gate_layout.shape() != up_layout.shape() {
            candle_core::bail!(
                "swiglu: {:?} and {:?}",
                gate_layout.dims(),
                up_layout.dims()
            )
        }
        let mut out = vec![0f32; gate.len()];
        out.par_chunks_mut(4096)
            .zip(gate.par_chunks(4096).zip(up.par_chunks(4096)))
            .for_each(|(out, (gate, up))| {
                for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                    *o = g / (1.0 + (-g).exp()) * u;
                }
            });
        output(out, gate_layout.shape().clone())
    }

    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // d up = g · silu(gate); d gate = g · up · σ(gate) · (1 + gate · (1 − σ(gate))).
        let (d_gate, d_up) = read(gate, self.name(), |gate| {
            read(up, self.name(), |up| {
                read(grad, self.name(), |g| {
                    let mut d_gate = vec![0f32; gate.len()];
                    let mut d_up = vec![0f32; gate.len()];
                    d_gate
                        .par_chunks_mut(4096)
                        .zip(d_up.par_chunks_mut(4096))
                        .zip(gate.par_chunks(4096).zip(up.par_chunks(4096)))
                        .zip(g.par_chunks(4096))
                        .for_each(|(((d_gate, d_up), (gate, up)), g)| {
                            for i in 0..gate.len() {
                                let s = sigmoid(gate[i]);
                                d_up[i] = g[i] * gate[i] * s;
                                d_gate[i] = g[i] * up[i] * s * (1.0 + gate[i] * (1.0 - s));
                            }
                        });
                    Ok((d_gate, d_up))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(d_gate, gate.shape(), gate.device())?),
            Some(Tensor::from_vec(d_up, up.shape(), up.device())?),
        ))
    }
}

/// Per row of logits `[rows, vocab]`, `−log softmax(row)[target]`: `[rows]`.
pub(crate) struct CrossEntropy {
    pub(crate) targets: Arc<[u32]>,
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "train-cross-entropy"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let logits = values(storage, layout, self.name())?;
        let (rows, vocab) = layout.shape().dims2()?;
        if rows != self.targets.len() || self.targets.iter().any(|&t| t as usize >= vocab) {
            candle_core::bail!("cross-entropy: {rows} rows of {vocab} for the targets given")
        }
        let losses: Vec<f32> = logits
            .par_chunks(vocab)
            .zip(self.targets.par_iter())
            .map(|(row, &target)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = row.iter().map(|v| (v - max).exp()).sum();
                total.ln() - (row[target as usize] - max)
            })
            .collect();
        output(losses, rows)
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // d logits = g · (softmax − one-hot), with log Σ exp = loss + the target's logit.
        let losses = res.to_vec1::<f32>()?;
        let g = grad.to_vec1::<f32>()?;
        let vocab = arg.dim(1)?;
        let d = read(arg, self.name(), |logits| {
            let mut d = vec![0f32; logits.len()];
            d.par_chunks_mut(vocab)
                .zip(logits.par_chunks(vocab))
                .enumerate()
                .for_each(|(i, (d, row))| {
                    let target = self.targets[i] as usize;
                    let log_total = losses[i] + row[target];
                    for (d, &v) in d.iter_mut().zip(row) {
                        *d = g[i] * (v - log_total).exp();
                    }
                    d[target] -= g[i];
                });
            Ok(d)
        })?;
        Tensor::from_vec(d, arg.shape(), arg.device()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    //! Every fused op against its composition from candle ops, forward and backward.

    use candle_core::{D, Device, Tensor, Var};

    use super::*;

    fn random(shape: &[usize], seed: u64) -> Var {
        // Deterministic values without a random generator: a scrambled sequence in [-2, 2).
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count as u64)
            .map(|i| {
                let h = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
                let h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                ((h >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect();
        Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// Forward values and the gradient of `Σ out ⊙ weights` for each input, fused and composed.
    fn compare(
        inputs: &[&Var],
        fused: impl Fn(&[&Tensor]) -> Tensor,
        composed: impl Fn(&[&Tensor]) -> Tensor,
        tolerance: f32,
    ) {
        let tensors: Vec<&Tensor> = inputs.iter().map(|v| v.as_tensor()).collect();
        let (a, b) = (fused(&tensors), composed(&tensors));
        assert_eq!(a.dims(), b.dims());
        assert!(
            max_diff(&a, &b) <= tolerance,
            "forward differs by {}",
            max_diff(&a, &b)
        );
        let weights = random(a.dims(), 99);
        let loss = |t: &Tensor| (t * weights.as_tensor()).unwrap().sum_all().unwrap();
        let (ga, gb) = (loss(&a).backward().unwrap(), loss(&b).backward().unwrap());
        for input in &tensors {
            let (x, y) = (ga.get(input).unwrap(), gb.get(input).unwrap());
            assert!(
                max_diff(x, y) <= tolerance,
                "gradient differs by {}",
                max_diff(x, y)
            );
        }
    }

    #[test]
    fn rms_norm_matches_its_composition() {
        let x = random(&[5, 12], 1);
        let weight: Vec<f32> = (0..12).map(|i| 0.5 + i as f32 / 10.0).collect();
        let w = Tensor::new(weight.as_slice(), &Device::Cpu).unwrap();
        let op = || RmsNorm {
            weight: weight.clone().into(),
            eps: 1e-5,
        };
        compare(
            &[&x],
            |t| t[0].apply_op1(op()).unwrap(),
            |t| {
                let ms = t[0].sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
                let r = (ms + 1e-5).unwrap().sqrt().unwrap().recip().unwrap();
                t[0].broadcast_mul(&r).unwrap().broadcast_mul(&w).unwrap()
            },
            1e-5,
        );
    }

    #[test]
    fn rope_matches_its_composition() {
        let (rows, length, heads, d) = (2, 3, 2, 4);
        let x = random(&[rows * length, heads * d], 2);
        let angles: Vec<f32> = (0..length * d / 2).map(|i| i as f32 * 0.37).collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let table = |v: &[f32]| Tensor::from_slice(v, (1, length, 1, d / 2, 1), &Device::Cpu);
        let (c, s) = (table(&cos).unwrap(), table(&sin).unwrap());
        compare(
            &[&x],
            |t| {
                t[0].apply_op1(Rope {
                    cos: cos.clone().into(),
                    sin: sin.clone().into(),
                    rows,
                    length,
                    heads,
                    head_dim: d,
                })
                .unwrap()
            },
            |t| {
                let x = t[0].reshape((rows, length, heads, d / 2, 2)).unwrap();
                let (e, o) = (x.narrow(4, 0, 1).unwrap(), x.narrow(4, 1, 1).unwrap());
                let re = (e.broadcast_mul(&c).unwrap() - o.broadcast_mul(&s).unwrap()).unwrap();
                let ro = (e.broadcast_mul(&s).unwrap() + o.broadcast_mul(&c).unwrap()).unwrap();
                Tensor::cat(&[re, ro], 4)
                    .unwrap()
                    .reshape((rows, length, heads, d))
                    .unwrap()
                    .transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
            },
            0.0,
        );
    }

    #[test]
    fn causal_softmax_matches_its_composition() {
        // Two heads' queries stacked: 2 x length rows against length keys.
        let length = 4;
        let s = random(&[3, 2 * length, length], 3);
        let mask: Vec<f32> = (0..2 * length * length)
            .map(|i| {
                if i % length > (i / length) % length {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, (2 * length, length), &Device::Cpu).unwrap();
        compare(
            &[&s],
            |t| {
                t[0].apply_op1(CausalSoftmax { scale: 0.5, length })
                    .unwrap()
            },
            |t| {
                let x = (t[0] * 0.5).unwrap().broadcast_add(&mask).unwrap();
                let max = x.max_keepdim(D::Minus1).unwrap().detach();
                let e = x.broadcast_sub(&max).unwrap().exp().unwrap();
                e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap()
            },
            1e-6,
        );
    }

    #[test]
    fn swiglu_matches_its_composition() {
        let (gate, up) = (random(&[4, 10], 4), random(&[4, 10], 5));
        compare(
            &[&gate, &up],
            |t| t[0].apply_op2(t[1], SwiGlu).unwrap(),
            |t| (t[0].silu().unwrap() * t[1]).unwrap(),
            1e-5,
        );
    }

    #[test]
    fn cross_entropy_matches_its_composition() {
        let logits = random(&[3, 7], 6);
        let targets = vec![0u32, 6, 3];
        let t = Tensor::from_slice(&targets, (3, 1), &Device::Cpu).unwrap();
        compare(
            &[&logits],
            |x| {
                x[0].apply_op1(CrossEntropy {
                    targets: targets.clone().into(),
                })
                .unwrap()
            },
            |x| {
                let max = x[0].max_keepdim(1).unwrap().detach();
                let shifted = x[0].broadcast_sub(&max).unwrap();
                let log_total = shifted
                    .exp()
                    .unwrap()
                    .sum_keepdim(1)
                    .unwrap()
                    .log()
                    .unwrap();
                (log_total - shifted.gather(&t, 1).unwrap())
                    .unwrap()
                    .squeeze(1)
                    .unwrap()
            },
            1e-5,
        );
    }
}
