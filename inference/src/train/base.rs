//! The frozen base model as the trainer computes with it, and the product of activations with
//! a frozen matrix. Two representations of every matrix ([`BaseProduct`] chooses):
//!
//! - dense: dequantized once to an f32 candle tensor (GGUF Q4_1/Q8_0 blocks through the
//!   kernels' own `row_f32`, so the values are the ones inference multiplies with), about four
//!   bytes per parameter beside the model;
//! - as stored: the loaded model's own matrix, multiplied by the kernels exactly as inference
//!   does (8-bit activation blocks against Q4_1/Q8_0 rows), no copy kept; the backward pass
//!   dequantizes the matrix for the moment of its product `grad · W` (straight through the
//!   activation rounding).
//!
//! Embeddings are looked up row by row from the model in both cases.
//!
//! Why not candle's quantized `QMatMul`: it has no backward, so a gradient through it is
//! silently cut. Why a custom op rather than `x.matmul(&w.t())`: candle's matmul backward also
//! computes the weight's gradient (as large a product as the input's), which a frozen weight
//! never uses. [`FrozenLinear`]'s forward is the very same gemm call and its backward returns
//! the input's gradient only, so both paths give identical numbers and the op saves the third
//! product of every linear layer.
//!
//! Invariants: query and key rows are in the adjacent-pair rotary order of the loaded model
//! (GGUF's; a Hugging Face checkpoint was permuted at load), so a trained `lora_B` of `q_proj`
//! or `k_proj` is in that order too until it is written out. No tensor here is a variable.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Storage, Tensor};
use provdb_kernels::{Activations, Matrix, matmul};
use rayon::prelude::*;

use crate::llama::{LayerWeights, LlamaModel};

/// How the frozen base matrices are kept and multiplied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BaseProduct {
    /// Dequantized to f32; provdb's frozen-linear op, whose backward computes the input's
    /// gradient only.
    #[default]
    FrozenLinear,
    /// Dequantized to f32; candle's matmul, whose backward also computes the (unused) weight
    /// gradient: the same numbers as [`Self::FrozenLinear`], a third more work.
    Matmul,
    /// As the model stores them (no f32 copy), multiplied by provdb's inference kernels.
    AsStored,
}

/// Which matrix of the model.
#[derive(Clone, Copy, Debug)]
enum Which {
    Linear { layer: usize, module: usize },
    Head,
}

/// A matrix of the loaded model, read where it is stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredMatrix {
    model: Arc<LlamaModel>,
    which: Which,
}

fn module_matrix(layer: &LayerWeights, module: usize) -> &Matrix {
    [
        &layer.query,
        &layer.key,
        &layer.value,
        &layer.output,
        &layer.gate,
        &layer.up,
        &layer.down,
    ][module]
}

impl StoredMatrix {
    fn matrix(&self) -> &Matrix {
        let weights = self.model.weights();
        match self.which {
            Which::Linear { layer, module } => module_matrix(&weights.layers[layer], module),
            Which::Head => weights.head(),
        }
    }
}

/// A frozen `[output, input]` matrix.
#[derive(Clone, Debug)]
pub(crate) enum FrozenMatrix {
    Dense(Tensor),
    Stored(StoredMatrix),
}

/// One decoder block: norms and the seven matrices in [`crate::lora::MODULES`] order.
#[derive(Debug)]
pub(crate) struct FrozenLayer {
    pub(crate) attention_norm: Arc<[f32]>,
    pub(crate) ffn_norm: Arc<[f32]>,
    pub(crate) linear: [FrozenMatrix; 7],
}

/// The whole frozen base.
#[derive(Debug)]
pub(crate) struct FrozenBase {
    model: Arc<LlamaModel>,
    pub(crate) head: FrozenMatrix,
    pub(crate) output_norm: Arc<[f32]>,
    pub(crate) layers: Vec<FrozenLayer>,
}

fn dequantized(matrix: &Matrix) -> candle_core::Result<Tensor> {
    let (rows, cols) = (matrix.rows(), matrix.cols());
    let mut values = vec![0f32; rows * cols];
    values
        .par_chunks_mut(cols)
        .enumerate()
        .for_each(|(r, row)| matrix.row_f32(r, row));
    Tensor::from_vec(values, (rows, cols), &Device::Cpu)
}

fn vector(values: &[f32]) -> candle_core::Result<Arc<[f32]>> {
    Ok(values.into())
}

impl FrozenBase {
    /// The base for `product`: dequantized (about 4 bytes per parameter) unless as stored.
    pub(crate) fn new(model: &Arc<LlamaModel>, product: BaseProduct) -> candle_core::Result<Self> {
        let frozen = |which: Which| -> candle_core::Result<FrozenMatrix> {
            let stored = StoredMatrix {
                model: Arc::clone(model),
                which,
            };
            if product == BaseProduct::AsStored {
                Ok(FrozenMatrix::Stored(stored))
            } else {
                dequantized(stored.matrix()).map(FrozenMatrix::Dense)
            }
        };
        let weights = model.weights();
        let mut layers = Vec::with_capacity(weights.layers.len());
        for (index, layer) in weights.layers.iter().enumerate() {
            let mut linear = Vec::with_capacity(7);
            for module in 0..7 {
                linear.push(frozen(Which::Linear {
                    layer: index,
                    module,
                })?);
            }
            let linear: [FrozenMatrix; 7] = linear
                .try_into()
                .map_err(|_| candle_core::Error::Msg("seven matrices per block".into()))?;
            layers.push(FrozenLayer {
                attention_norm: vector(&layer.attention_norm)?,
                ffn_norm: vector(&layer.ffn_norm)?,
                linear,
            });
        }
        Ok(Self {
            model: Arc::clone(model),
            head: frozen(Which::Head)?,
            output_norm: vector(&weights.output_norm)?,
            layers,
        })
    }

    /// True when the matrices are read as stored.
    pub(crate) fn is_stored(&self) -> bool {
        matches!(self.head, FrozenMatrix::Stored(_))
    }

    /// The embedding rows of `tokens` (ids checked by the caller): `[tokens, hidden]`.
    pub(crate) fn embed(&self, tokens: &[u32]) -> candle_core::Result<Tensor> {
        let embeddings = &self.model.weights().embeddings;
        let hidden = embeddings.cols();
        let mut values = vec![0f32; tokens.len() * hidden];
        for (row, &token) in values.chunks_exact_mut(hidden).zip(tokens) {
            embeddings.row_f32(token as usize, row);
        }
        Tensor::from_vec(values, (tokens.len(), hidden), &Device::Cpu)
    }
}

/// `x · Wᵀ` for activations `x` (`[rows, input]`) and a frozen `[output, input]` matrix.
pub(crate) fn frozen_product(
    x: &Tensor,
    weight: &FrozenMatrix,
    product: BaseProduct,
) -> candle_core::Result<Tensor> {
    match (weight, product) {
        (FrozenMatrix::Dense(weight), BaseProduct::Matmul) => x.matmul(&weight.t()?),
        (FrozenMatrix::Dense(weight), _) => x.apply_op1(FrozenLinear {
            weight: weight.clone(),
        }),
        (FrozenMatrix::Stored(stored), _) => x.apply_op1(stored.clone()),
    }
}

/// The product with a frozen weight; backward gives `grad · W` for the input and nothing for
/// the weight.
struct FrozenLinear {
    /// `[output, input]`, contiguous, not a variable.
    weight: Tensor,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, input) = layout.shape().dims2()?;
        // The layout `x.matmul(&w.t())` would hand to the same gemm: identical results.
        let transposed = self.weight.t()?;
        let (weight_storage, weight_layout) = transposed.storage_and_layout();
        let Storage::Cpu(weight) = &*weight_storage else {
            candle_core::bail!("frozen-linear: the weights must be on the CPU")
        };
        let (weight_input, output) = weight_layout.shape().dims2()?;
        if weight_input != input {
            candle_core::bail!("frozen-linear: input width {input}, weight width {weight_input}")
        }
        let product = storage.matmul(weight, (1, rows, output, input), layout, weight_layout)?;
        Ok((product, Shape::from((rows, output))))
    }

    fn bwd(
        &self,
        _input: &Tensor,
        _output: &Tensor,
        output_grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        output_grad.matmul(&self.weight).map(Some)
    }
}

impl CustomOp1 for StoredMatrix {
    fn name(&self) -> &'static str {
        "stored-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, input) = layout.shape().dims2()?;
        let matrix = self.matrix();
        let (CpuStorage::F32(values), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("stored-linear: contiguous f32 activations expected")
        };
        if matrix.cols() != input {
            candle_core::bail!(
                "stored-linear: input width {input}, weight width {}",
                matrix.cols()
            )
        }
        let mut out = vec![0f32; rows * matrix.rows()];
        matmul(
            matrix,
            &Activations::new(&values[start..end], input),
            &mut out,
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, matrix.rows()))))
    }

    fn bwd(
        &self,
        _input: &Tensor,
        _output: &Tensor,
        output_grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // Dequantized for this product only: memory stays at one matrix, and the cost (one
        // pass over the weights) is small beside the product's `2 · rows` flops per weight.
        output_grad.matmul(&dequantized(self.matrix())?).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{BaseProduct, FrozenMatrix, frozen_product};

    #[test]
    fn the_frozen_op_equals_matmul_forward_and_backward() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (5, 3), &device).unwrap();
        let x = Var::new(
            Tensor::randn(0f32, 1.0, (4, 3), &device)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap(),
            &device,
        )
        .unwrap();
        let mut results = Vec::new();
        for product in [BaseProduct::FrozenLinear, BaseProduct::Matmul] {
            let y = frozen_product(x.as_tensor(), &FrozenMatrix::Dense(weight.clone()), product)
                .unwrap();
            let loss = y.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let grad = grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            results.push((y.to_vec2::<f32>().unwrap(), grad));
        }
        assert_eq!(results[0], results[1]);
    }
}
