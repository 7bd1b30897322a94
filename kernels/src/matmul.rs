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
use crate::table::Kernels;

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
        if format != WeightFormat::F32 && !cols.is_multiple_of(BLOCK) {
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
        check_f32_len(rows, cols, values.len())?;
        Ok(Self {
            rows,
            cols,
            data: Rows::F32(values),
        })
    }

    /// f32 values quantized to Q8_0 (for weights in formats provdb does not compute with).
    pub fn quantize_q8_0(rows: usize, cols: usize, values: &[f32]) -> Result<Self, KernelError> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(KernelError::PartialBlock {
                format: WeightFormat::Q8_0,
                block: BLOCK,
                cols,
            });
        }
        check_f32_len(rows, cols, values.len())?;
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

    /// `out[i * batch + b] = W[first + i] · x[b]` for the rows `out` covers.
    fn rows_times(&self, kernels: &DotKernels, first: usize, x: &Activations<'_>, out: &mut [f32]) {
        let batch = x.rows();
        let count = out.len() / batch;
        let per_row = self.cols / BLOCK;
        let blocks = first * per_row..(first + count) * per_row;
        match &self.data {
            Rows::F32(v) => {
                for (i, per_weight) in out.chunks_exact_mut(batch).enumerate() {
                    let row = &v[(first + i) * self.cols..(first + i + 1) * self.cols];
                    for (b, o) in per_weight.iter_mut().enumerate() {
                        *o = (kernels.f32)(row, x.row(b));
                    }
                }
            }
            Rows::Q4_1(v) => (kernels.q4_1)(&v[blocks], per_row, x.quantized(), batch, out),
            Rows::Q8_0(v) => (kernels.q8_0)(&v[blocks], per_row, x.quantized(), batch, out),
        }
    }
}

/// `rows × cols` f32 values must be given exactly.
fn check_f32_len(rows: usize, cols: usize, len: usize) -> Result<(), KernelError> {
    if len == rows * cols {
        return Ok(());
    }
    Err(KernelError::WrongLength {
        format: WeightFormat::F32,
        rows,
        cols,
        expected: rows * cols * 4,
        got: len * 4,
    })
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
    matmul_many(&mut [(weights, out)], x);
}

/// [`matmul`] with the kernels of a chosen variant (to compare it with the portable one).
pub fn matmul_with(kernels: &Kernels, weights: &Matrix, x: &Activations<'_>, out: &mut [f32]) {
    matmul_many_with(kernels, &mut [(weights, out)], x);
}

/// Several products of the same activation rows (e.g. the query, key and value projections)
/// in one parallel region: one fork and join instead of one per matrix, which matters when
/// each product takes only tens of microseconds, as in decoding.
pub fn matmul_many(products: &mut [(&Matrix, &mut [f32])], x: &Activations<'_>) {
    run_products(kernels(), products, x);
}

/// [`matmul_many`] with the kernels of a chosen variant.
pub fn matmul_many_with(
    kernels: &Kernels,
    products: &mut [(&Matrix, &mut [f32])],
    x: &Activations<'_>,
) {
    run_products(kernels.dot, products, x);
}

fn run_products(kernels: &DotKernels, products: &mut [(&Matrix, &mut [f32])], x: &Activations<'_>) {
    let batch = x.rows();
    for (weights, out) in products.iter() {
        assert_eq!(x.cols(), weights.cols, "activation width != weight columns");
        assert_eq!(
            out.len(),
            weights.rows * batch,
            "output size != batch x rows"
        );
    }
    if batch == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let total: usize = products.iter().map(|(w, _)| w.rows).sum();
    let chunk = rows_per_task(total, threads);
    // Each task owns the outputs of a run of weight rows, `[row][batch]`; for one activation
    // row that is already `out`'s layout, else it is transposed into place afterwards.
    let mut transposed: Vec<Vec<f32>> = products
        .iter()
        .map(|(w, _)| {
            if batch == 1 {
                Vec::new()
            } else {
                vec![0f32; w.rows * batch]
            }
        })
        .collect();
    let mut tasks: Vec<(&Matrix, usize, &mut [f32])> = Vec::new();
    for ((weights, out), buffer) in products.iter_mut().zip(&mut transposed) {
        let target: &mut [f32] = if batch == 1 { out } else { buffer };
        for (index, part) in target.chunks_mut(chunk * batch).enumerate() {
            tasks.push((*weights, index * chunk, part));
        }
    }
    let run = |(weights, first, part): (&Matrix, usize, &mut [f32])| {
        weights.rows_times(kernels, first, x, part);
    };
    if threads <= 1 || tasks.len() <= 1 {
        tasks.into_iter().for_each(run);
    } else {
        tasks.into_par_iter().for_each(run);
    }
    if batch > 1 {
        for ((weights, out), buffer) in products.iter_mut().zip(&transposed) {
            for (r, per_row) in buffer.chunks_exact(batch).enumerate() {
                for (b, &value) in per_row.iter().enumerate() {
                    out[b * weights.rows + r] = value;
                }
            }
        }
    }
}
