//! Low-rank adapter deltas applied unmerged to a batch of rows in segments: the SGMV idea of
//! Punica and S-LoRA ("segmented gather matrix-vector"), on the CPU.
//!
//! A LoRA adapter adds `s · B · A · x` to a linear layer's output `W · x`, with `A` of shape
//! `rank × input` and `B` of shape `output × rank`. The base product is computed once for the
//! whole batch (one weight read for every row, whatever adapter the row uses); then
//! [`apply_low_rank`] adds each segment's delta to its rows only: `t = s · A · x` (the shrink,
//! `rank` dot products of `input` values) and `y += Σⱼ tⱼ · Bᵀ[j]` (the expand, `rank` axpys of
//! `output` values). The factors are read in place, never copied per token, and rows that no
//! segment names cost nothing. Several segments may name the same rows (a weighted composition
//! of adapters): they are applied in the order given.
//!
//! Every row's arithmetic is the same sequence of operations whatever the other rows, segments
//! or thread count, so a row gets bit-identical results alone or in any batch.

use std::ops::Range;

use rayon::prelude::*;

use crate::dot::kernels;
use crate::error::KernelError;

/// One adapter's factors for one linear layer, in the layout the kernel reads: `A` row-major
/// (`rank × input`) and `B` transposed (`rank × output`), both f32.
#[derive(Clone, Debug)]
pub struct LowRank {
    rank: usize,
    input: usize,
    output: usize,
    shrink: Vec<f32>,
    expand: Vec<f32>,
}

impl LowRank {
    /// From PEFT's tensors: `lora_A` (`rank × input`, row-major) and `lora_B`
    /// (`output × rank`, row-major).
    pub fn from_peft(
        rank: usize,
        input: usize,
        output: usize,
        a: Vec<f32>,
        b: &[f32],
    ) -> Result<Self, KernelError> {
        if rank == 0 || a.len() != rank * input || b.len() != output * rank {
            return Err(KernelError::LowRankShape {
                rank,
                input,
                output,
                a: a.len(),
                b: b.len(),
            });
        }
        let mut expand = vec![0f32; rank * output];
        for (o, row) in b.chunks_exact(rank).enumerate() {
            for (j, &value) in row.iter().enumerate() {
                expand[j * output + o] = value;
            }
        }
        Self::from_parts(rank, input, output, a, expand)
    }

    /// From `A` (`rank × input`, row-major) and `B` already transposed (`rank × output`).
    pub fn from_parts(
        rank: usize,
        input: usize,
        output: usize,
        shrink: Vec<f32>,
        expand: Vec<f32>,
    ) -> Result<Self, KernelError> {
        if rank == 0 || shrink.len() != rank * input || expand.len() != output * rank {
            return Err(KernelError::LowRankShape {
                rank,
                input,
                output,
                a: shrink.len(),
                b: expand.len(),
            });
        }
        Ok(Self {
            rank,
            input,
            output,
            shrink,
            expand,
        })
    }

    /// The rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Input width (columns of `A`).
    pub fn input(&self) -> usize {
        self.input
    }

    /// Output width (rows of `B`).
    pub fn output(&self) -> usize {
        self.output
    }

    /// Bytes the factors occupy.
    pub fn byte_size(&self) -> usize {
        (self.shrink.len() + self.expand.len()) * 4
    }

    /// `B · A` as a dense `output × input` matrix, row-major (to merge into a base matrix).
    pub fn dense(&self) -> Vec<f32> {
        let mut dense = vec![0f32; self.output * self.input];
        for (o, row) in dense.chunks_exact_mut(self.input).enumerate() {
            for j in 0..self.rank {
                let b = self.expand[j * self.output + o];
                let a = &self.shrink[j * self.input..(j + 1) * self.input];
                row.iter_mut().zip(a).for_each(|(d, &a)| *d += b * a);
            }
        }
        dense
    }

    /// Adds `scale · B · A · x` to `out` for one row.
    fn apply_row(&self, scale: f32, x: &[f32], out: &mut [f32], shrunk: &mut [f32]) {
        let dot = kernels().f32;
        for (t, a) in shrunk.iter_mut().zip(self.shrink.chunks_exact(self.input)) {
            *t = scale * dot(a, x);
        }
        expand_kernel()(shrunk, &self.expand, out);
    }
}

/// Outputs accumulated in registers by [`expand`] at a time.
const EXPAND_BLOCK: usize = 64;

/// `y[o] += Σⱼ t[j] · expand[j][o]`, `expand` holding `t.len()` rows of `y.len()` values.
///
/// A block of outputs is kept in registers across every `j` (one load and one store of `y`
/// per block instead of one per `j`). Each `y[o]` is still summed in order of `j`, with
/// separate multiplies and adds, so every build of this function gives the same bits.
#[inline(always)]
fn expand(t: &[f32], expand: &[f32], y: &mut [f32]) {
    let output = y.len();
    let whole = output - output % EXPAND_BLOCK;
    for start in (0..whole).step_by(EXPAND_BLOCK) {
        let mut block = [0f32; EXPAND_BLOCK];
        block.copy_from_slice(&y[start..start + EXPAND_BLOCK]);
        for (j, &tj) in t.iter().enumerate() {
            let b = &expand[j * output + start..j * output + start + EXPAND_BLOCK];
            for (acc, &b) in block.iter_mut().zip(b) {
                *acc += tj * b;
            }
        }
        y[start..start + EXPAND_BLOCK].copy_from_slice(&block);
    }
    for (j, &tj) in t.iter().enumerate() {
        let b = &expand[j * output + whole..(j + 1) * output];
        for (acc, &b) in y[whole..].iter_mut().zip(b) {
            *acc += tj * b;
        }
    }
}

/// [`expand`] compiled for AVX-512 (the same arithmetic on 16-lane vectors).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn expand_avx512(t: &[f32], b: &[f32], y: &mut [f32]) {
    expand(t, b, y);
}

/// [`expand`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn expand_avx2(t: &[f32], b: &[f32], y: &mut [f32]) {
    expand(t, b, y);
}

/// A build of [`expand`].
type ExpandKernel = fn(&[f32], &[f32], &mut [f32]);

/// The widest build of [`expand`] this CPU runs, chosen once.
fn expand_kernel() -> ExpandKernel {
    static CHOSEN: std::sync::OnceLock<ExpandKernel> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was detected on this CPU.
                return |t, b, y| unsafe { expand_avx512(t, b, y) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was detected on this CPU.
                return |t, b, y| unsafe { expand_avx2(t, b, y) };
            }
        }
        expand
    })
}

/// Rows of a batch that get one adapter's delta, and its scale (`lora_alpha / rank`, or
/// `/ √rank` with rsLoRA, times the request's weight for the adapter).
#[derive(Clone, Debug)]
pub struct LowRankSegment<'a> {
    /// Rows of the batch.
    pub rows: Range<usize>,
    /// The adapter's factors for this layer.
    pub factors: &'a LowRank,
    /// The scale.
    pub scale: f32,
}

/// Below this many multiply-adds a call runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 16;

/// `out[r] += s · B · A · x[r]` for every segment and each of its rows, segments in order.
///
/// `x` holds rows of `input` values and `out` rows of `output` values. Panics when a segment's
/// factors do not have those widths or its rows are outside the batch: a caller bug.
pub fn apply_low_rank(
    x: &[f32],
    input: usize,
    out: &mut [f32],
    output: usize,
    segments: &[LowRankSegment<'_>],
) {
    if segments.is_empty() || input == 0 || output == 0 {
        return;
    }
    let rows = x.len() / input;
    assert_eq!(out.len(), rows * output, "output rows != input rows");
    let mut work = 0;
    let mut max_rank = 0;
    for segment in segments {
        let f = segment.factors;
        assert_eq!((f.input, f.output), (input, output), "factor widths");
        assert!(segment.rows.end <= rows, "segment rows outside the batch");
        work += segment.rows.len() * f.rank * (input + output);
        max_rank = max_rank.max(f.rank);
    }
    let run_row = |(r, out_row): (usize, &mut [f32])| {
        let x_row = &x[r * input..(r + 1) * input];
        let mut shrunk = vec![0f32; max_rank];
        for segment in segments.iter().filter(|s| s.rows.contains(&r)) {
            let f = segment.factors;
            f.apply_row(segment.scale, x_row, out_row, &mut shrunk[..f.rank]);
        }
    };
    if work >= PARALLEL_WORK && rows > 1 && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(output).enumerate().for_each(run_row);
    } else {
        out.chunks_mut(output).enumerate().for_each(run_row);
    }
}
