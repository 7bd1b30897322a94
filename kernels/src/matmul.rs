//! Weight matrices and their product with a batch of activation rows: `out[b][n] = W[n] · x[b]`.
//!
//! The weight rows are split into chunks spread over the current rayon pool (the caller picks
//! the pool and so the thread count); each chunk multiplies its rows, read once, with every
//! activation row, so a batch of rows costs little more weight traffic than one row: that is
//! what makes prefill and batched decoding cheaper per token than single decoding. Each output
//! element is one call of one dot kernel, so the result does not depend on the batch size, on
//! how rows are chunked or on the thread count.

use rayon::prelude::*;

use crate::blocks::{Activations, BLOCK, BlockQ4_1, BlockQ8_0, WeightFormat};
use crate::dot::{DotKernels, kernels};
use crate::error::KernelError;

/// Weight rows in one format.
#[derive(Clone, Debug)]
enum Rows {
    F32(Vec<f32>),
    Q4_1(Vec<BlockQ4_1>),
    Q8_0(Vec<BlockQ8_0>),
}

/// A `rows × cols` weight matrix, row-major (one output per row, GGUF/ggml's layout).
#[derive(Clone, Debug)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Rows,
}

impl Matrix {
    /// A matrix from its GGUF bytes.
    pub fn from_gguf_bytes(
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self, KernelError> {
        if format != WeightFormat::F32 && cols % BLOCK != 0 {
            return Err(KernelError::PartialBlock {
                format,
                block: BLOCK,
                cols,
            });
        }
        let expected = rows * format.row_bytes(cols);
        if bytes.len() != expected {
            return Err(KernelError::WrongLength {
                format,
                rows,
                cols,
                expected,
                got: bytes.len(),
            });
        }
        let data = match format {
            WeightFormat::F32 => Rows::F32(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            WeightFormat::Q4_1 => Rows::Q4_1(BlockQ4_1::parse(bytes)),
            WeightFormat::Q8_0 => Rows::Q8_0(BlockQ8_0::parse(bytes)),
        };
        Ok(Self { rows, cols, data })
    }

    /// An f32 matrix.
    pub fn from_f32(rows: usize, cols: usize, values: Vec<f32>) -> Result<Self, KernelError> {
        if values.len() != rows * cols {
            return Err(KernelError::WrongLength {
                format: WeightFormat::F32,
                rows,
                cols,
                expected: rows * cols * 4,
                got: values.len() * 4,
            });
        }
        Ok(Self {
            rows,
            cols,
            data: Rows::F32(values),
        })
    }

    /// f32 values quantized to Q8_0 (for weights in formats provdb does not compute with).
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<Self, KernelError> {
        if cols % BLOCK != 0 {
            return Err(KernelError::PartialBlock {
                format: WeightFormat::Q8_0,
                block: BLOCK,
                cols,
            });
        }
        if values.len() != rows * cols {
            return Err(KernelError::WrongLength {
                format: WeightFormat::F32,
                rows,
                cols,
                expected: rows * cols * 4,
                got: values.len() * 4,
            });
        }
        Ok(Self {
            rows,
            cols,
            data: Rows::Q8_0(
                values
                    .chunks_exact(BLOCK)
                    .map(BlockQ8_0::quantize)
                    .collect(),
            ),
        })
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The format.
    pub fn format(&self) -> WeightFormat {
        match self.data {
            Rows::F32(_) => WeightFormat::F32,
            Rows::Q4_1(_) => WeightFormat::Q4_1,
            Rows::Q8_0(_) => WeightFormat::Q8_0,
        }
    }

    /// Bytes the weights occupy in memory.
    pub fn byte_size(&self) -> usize {
        match &self.data {
            Rows::F32(v) => v.len() * 4,
            Rows::Q4_1(v) => v.len() * size_of::<BlockQ4_1>(),
            Rows::Q8_0(v) => v.len() * size_of::<BlockQ8_0>(),
        }
    }

    /// Row `r` as f32 values (an embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        let per_row = self.cols / BLOCK;
        match &self.data {
            Rows::F32(v) => out.copy_from_slice(&v[r * self.cols..(r + 1) * self.cols]),
            Rows::Q4_1(v) => {
                for (block, o) in v[r * per_row..(r + 1) * per_row]
                    .iter()
                    .zip(out.chunks_exact_mut(BLOCK))
                {
                    block.dequantize(o);
                }
            }
            Rows::Q8_0(v) => {
                for (block, o) in v[r * per_row..(r + 1) * per_row]
                    .iter()
                    .zip(out.chunks_exact_mut(BLOCK))
                {
                    block.dequantize(o);
                }
            }
        }
    }

    /// `W[r] · x[b]` with the given kernels.
    fn dot(&self, kernels: &DotKernels, r: usize, x: &Activations<'_>, b: usize) -> f32 {
        let per_row = self.cols / BLOCK;
        match &self.data {
            Rows::F32(v) => (kernels.f32)(&v[r * self.cols..(r + 1) * self.cols], x.row(b)),
            Rows::Q4_1(v) => (kernels.q4_1)(&v[r * per_row..(r + 1) * per_row], x.quantized_row(b)),
            Rows::Q8_0(v) => (kernels.q8_0)(&v[r * per_row..(r + 1) * per_row], x.quantized_row(b)),
        }
    }
}

/// Rows per parallel task: enough tasks to balance the threads, few enough to keep each long.
fn rows_per_task(rows: usize, threads: usize) -> usize {
    if threads <= 1 {
        return rows.max(1);
    }
    rows.div_ceil(threads * 4).max(16)
}

/// `out[b * W.rows + n] = W[n] · x[b]` for every activation row `b` and weight row `n`.
///
/// Panics when the shapes disagree (`x.cols() != W.cols()` or `out.len() != x.rows() * W.rows()`):
/// that is a bug in the caller, not bad input.
pub fn matmul(weights: &Matrix, x: &Activations<'_>, out: &mut [f32]) {
    matmul_with(kernels(), weights, x, out);
}

/// [`matmul`] with chosen kernels (to compare the portable and SIMD paths).
pub fn matmul_with(kernels: &DotKernels, weights: &Matrix, x: &Activations<'_>, out: &mut [f32]) {
    let (n, batch) = (weights.rows, x.rows());
    assert_eq!(x.cols(), weights.cols, "activation width != weight columns");
    assert_eq!(out.len(), n * batch, "output size != batch x rows");
    let chunk = rows_per_task(n, rayon::current_num_threads());
    if batch == 1 {
        let task = |(index, part): (usize, &mut [f32])| {
            for (i, o) in part.iter_mut().enumerate() {
                *o = weights.dot(kernels, index * chunk + i, x, 0);
            }
        };
        if chunk >= n {
            out.chunks_mut(chunk).enumerate().for_each(task);
        } else {
            out.par_chunks_mut(chunk).enumerate().for_each(task);
        }
        return;
    }
    // Transposed (row-major by weight row) so each task owns a contiguous slice; then scattered.
    let mut transposed = vec![0f32; n * batch];
    let task = |(index, part): (usize, &mut [f32])| {
        for (i, per_row) in part.chunks_exact_mut(batch).enumerate() {
            let r = index * chunk + i;
            for (b, o) in per_row.iter_mut().enumerate() {
                *o = weights.dot(kernels, r, x, b);
            }
        }
    };
    if chunk >= n {
        transposed
            .chunks_mut(chunk * batch)
            .enumerate()
            .for_each(task);
    } else {
        transposed
            .par_chunks_mut(chunk * batch)
            .enumerate()
            .for_each(task);
    }
    for (r, per_row) in transposed.chunks_exact(batch).enumerate() {
        for (b, &value) in per_row.iter().enumerate() {
            out[b * n + r] = value;
        }
    }
}
