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
//! Factors are kept as f32, or as bf16 when the adapter was saved in bf16 (half the memory and
//! half the bytes read per token, widened to f32 in registers: lossless). Every row's
//! arithmetic is the same sequence of operations whatever the other rows, segments or thread
//! count, so a row gets bit-identical results alone or in any batch.

mod simd;

use std::ops::Range;

use rayon::prelude::*;

use crate::error::KernelError;
use crate::table::Kernels;
pub(crate) use simd::portable;
pub use simd::{LoraKernels, for_variant, kernels};

/// Factor values: f32, or bf16 kept as its bits.
#[derive(Clone, Debug)]
enum Factors {
    F32 { shrink: Vec<f32>, expand: Vec<f32> },
    Bf16 { shrink: Vec<u16>, expand: Vec<u16> },
}

/// One adapter's factors for one linear layer, in the layout the kernel reads: `A` row-major
/// (`rank × input`) and `B` transposed (`rank × output`).
#[derive(Clone, Debug)]
pub struct LowRank {
    rank: usize,
    input: usize,
    output: usize,
    factors: Factors,
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
        Self::checked(rank, input, output, Factors::F32 { shrink, expand })
    }

    /// [`LowRank::from_parts`] with bf16 values (their bit patterns), kept as bf16.
    pub fn from_parts_bf16(
        rank: usize,
        input: usize,
        output: usize,
        shrink: Vec<u16>,
        expand: Vec<u16>,
    ) -> Result<Self, KernelError> {
        Self::checked(rank, input, output, Factors::Bf16 { shrink, expand })
    }

    /// Checks the factors' lengths against the rank and widths.
    fn checked(
        rank: usize,
        input: usize,
        output: usize,
        factors: Factors,
    ) -> Result<Self, KernelError> {
        let (a, b) = match &factors {
            Factors::F32 { shrink, expand } => (shrink.len(), expand.len()),
            Factors::Bf16 { shrink, expand } => (shrink.len(), expand.len()),
        };
        if rank == 0 || a != rank * input || b != output * rank {
            return Err(KernelError::LowRankShape {
                rank,
                input,
                output,
                a,
                b,
            });
        }
        Ok(Self {
            rank,
            input,
            output,
            factors,
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
        match &self.factors {
            Factors::F32 { shrink, expand } => (shrink.len() + expand.len()) * 4,
            Factors::Bf16 { shrink, expand } => (shrink.len() + expand.len()) * 2,
        }
    }

    /// True when the factors are kept as bf16.
    pub fn is_bf16(&self) -> bool {
        matches!(self.factors, Factors::Bf16 { .. })
    }

    /// `A` (`rank × input`, row-major) and transposed `B` (`rank × output`) as f32.
    pub fn f32_factors(&self) -> (Vec<f32>, Vec<f32>) {
        match &self.factors {
            Factors::F32 { shrink, expand } => (shrink.clone(), expand.clone()),
            Factors::Bf16 { shrink, expand } => {
                let widen = |v: &[u16]| v.iter().map(|&b| simd::bf16_to_f32(b)).collect();
                (widen(shrink), widen(expand))
            }
        }
    }

    /// `B · A` as a dense `output × input` matrix, row-major (to merge into a base matrix).
    pub fn dense(&self) -> Vec<f32> {
        let (shrink, expand) = self.f32_factors();
        let mut dense = vec![0f32; self.output * self.input];
        for (o, row) in dense.chunks_exact_mut(self.input).enumerate() {
            for j in 0..self.rank {
                let b = expand[j * self.output + o];
                let a = &shrink[j * self.input..(j + 1) * self.input];
                row.iter_mut().zip(a).for_each(|(d, &a)| *d += b * a);
            }
        }
        dense
    }

    /// Adds `scale · B · A · x` to `out` for one row.
    fn apply_row(
        &self,
        kernels: &Kernels,
        scale: f32,
        x: &[f32],
        out: &mut [f32],
        shrunk: &mut [f32],
    ) {
        let lora = &kernels.lora;
        match &self.factors {
            Factors::F32 { shrink, expand } => {
                let dot = kernels.dot.f32;
                for (t, a) in shrunk.iter_mut().zip(shrink.chunks_exact(self.input)) {
                    *t = scale * dot(a, x);
                }
                (lora.expand_f32)(shrunk, expand, out);
            }
            Factors::Bf16 { shrink, expand } => {
                for (t, a) in shrunk.iter_mut().zip(shrink.chunks_exact(self.input)) {
                    *t = scale * (lora.dot_bf16)(a, x);
                }
                (lora.expand_bf16)(shrunk, expand, out);
            }
        }
    }
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
    apply_low_rank_with(Kernels::selected(), x, input, out, output, segments);
}

/// [`apply_low_rank`] with the kernels of a chosen variant (to compare it with the portable one).
pub fn apply_low_rank_with(
    kernels: &Kernels,
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
            f.apply_row(
                kernels,
                segment.scale,
                x_row,
                out_row,
                &mut shrunk[..f.rank],
            );
        }
    };
    if work >= PARALLEL_WORK && rows > 1 && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(output).enumerate().for_each(run_row);
    } else {
        out.chunks_mut(output).enumerate().for_each(run_row);
    }
}
