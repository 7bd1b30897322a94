//! The frozen base model as the trainer computes with it: every matrix of the loaded
//! [`LlamaModel`] dequantized once to an f32 candle tensor (GGUF Q4_1/Q8_0 blocks through the
//! kernels' own `row_f32`, so the values are the ones inference multiplies with), norms as f32
//! vectors, and the product of activations with a frozen matrix.
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

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Storage, Tensor};
use provdb_kernels::Matrix;
use rayon::prelude::*;

use crate::llama::LlamaModel;

/// How the frozen base matrices are multiplied (the results are identical; only the cost of
/// the backward pass differs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BaseProduct {
    /// provdb's frozen-linear op: the backward computes the input's gradient only.
    #[default]
    FrozenLinear,
    /// candle's matmul, whose backward also computes the (unused) weight gradient.
    Matmul,
}

/// One decoder block: norms and the seven matrices in [`crate::lora::MODULES`] order, each
/// `[output, input]`.
#[derive(Debug)]
pub(crate) struct FrozenLayer {
    pub(crate) attention_norm: Tensor,
    pub(crate) ffn_norm: Tensor,
    pub(crate) linear: [Tensor; 7],
}

/// The whole frozen base.
#[derive(Debug)]
pub(crate) struct FrozenBase {
    pub(crate) embeddings: Tensor,
    /// The output head (the embeddings again when tied).
    pub(crate) head: Tensor,
    pub(crate) output_norm: Tensor,
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

fn vector(values: &[f32]) -> candle_core::Result<Tensor> {
    Tensor::from_slice(values, values.len(), &Device::Cpu)
}

impl FrozenBase {
    /// Dequantizes the model's weights (about 4 bytes per parameter).
    pub(crate) fn from_model(model: &LlamaModel) -> candle_core::Result<Self> {
        let weights = model.weights();
        let embeddings = dequantized(&weights.embeddings)?;
        let head = match &weights.output {
            Some(head) => dequantized(head)?,
            None => embeddings.clone(),
        };
        let layers = weights
            .layers
            .iter()
            .map(|layer| {
                let matrices = [
                    &layer.query,
                    &layer.key,
                    &layer.value,
                    &layer.output,
                    &layer.gate,
                    &layer.up,
                    &layer.down,
                ];
                let mut linear = Vec::with_capacity(7);
                for matrix in matrices {
                    linear.push(dequantized(matrix)?);
                }
                let linear: [Tensor; 7] = linear
                    .try_into()
                    .map_err(|_| candle_core::Error::Msg("seven matrices per block".into()))?;
                Ok(FrozenLayer {
                    attention_norm: vector(&layer.attention_norm)?,
                    ffn_norm: vector(&layer.ffn_norm)?,
                    linear,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            head,
            output_norm: vector(&weights.output_norm)?,
            layers,
        })
    }
}

/// `x · Wᵀ` for activations `x` (`[rows, input]`) and `weight` (`[output, input]`).
pub(crate) fn frozen_product(
    x: &Tensor,
    weight: &Tensor,
    product: BaseProduct,
) -> candle_core::Result<Tensor> {
    match product {
        BaseProduct::FrozenLinear => x.apply_op1(FrozenLinear {
            weight: weight.clone(),
        }),
        BaseProduct::Matmul => x.matmul(&weight.t()?),
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{BaseProduct, frozen_product};

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
            let y = frozen_product(x.as_tensor(), &weight, product).unwrap();
            let loss = y.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let grad = grads.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            results.push((y.to_vec2::<f32>().unwrap(), grad));
        }
        assert_eq!(results[0], results[1]);
    }
}
