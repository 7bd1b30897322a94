//! Writes PEFT LoRA folders with random weights for a base model's shapes: the adapters of the
//! tests and of `provdb bench adapters` (real PEFT layout and tensor names, so they exercise
//! the same loader as adapters trained elsewhere).

use std::collections::HashMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, tensor::TensorView};

use super::MODULES;
use super::peft::{CONFIG_FILE, WEIGHTS_FILE, widths};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaConfig;

/// What to write.
#[derive(Clone, Debug)]
pub struct RandomAdapter {
    /// Rank of every factor.
    pub rank: usize,
    /// `lora_alpha`.
    pub alpha: f32,
    /// Targeted modules (PEFT names, among [`MODULES`]).
    pub targets: Vec<&'static str>,
    /// Values are uniform in `[-magnitude, magnitude)`.
    pub magnitude: f32,
    /// Seed of the values.
    pub seed: u64,
    /// Store bf16 instead of f32 (as PEFT saves adapters of bf16 models).
    pub bf16: bool,
    /// rsLoRA scaling.
    pub use_rslora: bool,
}

impl RandomAdapter {
    /// Rank `rank` on every linear layer, f32, seed `seed`.
    pub fn all_linear(rank: usize, seed: u64) -> Self {
        Self {
            rank,
            alpha: 2.0 * rank as f32,
            targets: MODULES.to_vec(),
            magnitude: 0.05,
            seed,
            bf16: false,
            use_rslora: false,
        }
    }
}

fn write_error(path: &Path, error: impl std::fmt::Display) -> InferenceError {
    InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// Writes `spec` as a PEFT folder `dir` for a base with `config`.
pub fn write(dir: &Path, config: &LlamaConfig, spec: &RandomAdapter) -> Result<()> {
    fs_err::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let peft_config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "provdb-random-test-base",
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": 0.0,
        "target_modules": spec.targets,
        "use_rslora": spec.use_rslora,
        "use_dora": false,
        "bias": "none",
        "fan_in_fan_out": false,
        "modules_to_save": null,
        "inference_mode": true,
    });
    let text = serde_json::to_string_pretty(&peft_config)
        .map_err(|e| InferenceError::Invalid(e.to_string()))?;
    fs_err::write(dir.join(CONFIG_FILE), text).map_err(|e| write_error(dir, e))?;
    let widths = widths(config);
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for layer in 0..config.layers {
        for &target in &spec.targets {
            let module = MODULES.iter().position(|m| *m == target).ok_or_else(|| {
                InferenceError::Invalid(format!("unknown target module {target}"))
            })?;
            let (input, output) = widths[module];
            let part = if module < 4 { "self_attn" } else { "mlp" };
            let prefix = format!("base_model.model.model.layers.{layer}.{part}.{target}");
            for (factor, shape) in [
                ("lora_A", [spec.rank, input]),
                ("lora_B", [output, spec.rank]),
            ] {
                let count = shape[0] * shape[1];
                let mut bytes = Vec::with_capacity(count * 4);
                for _ in 0..count {
                    let value: f32 = rng.random_range(-spec.magnitude..spec.magnitude);
                    if spec.bf16 {
                        bytes.extend_from_slice(&half::bf16::from_f32(value).to_le_bytes());
                    } else {
                        bytes.extend_from_slice(&value.to_le_bytes());
                    }
                }
                tensors.push((format!("{prefix}.{factor}.weight"), shape.to_vec(), bytes));
            }
        }
    }
    let dtype = if spec.bf16 { Dtype::BF16 } else { Dtype::F32 };
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(dtype, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| InferenceError::Invalid(e.to_string()))
        })
        .collect::<Result<HashMap<String, TensorView<'_>>>>()?;
    let path = dir.join(WEIGHTS_FILE);
    safetensors::serialize_to_file(views, None, &path).map_err(|e| write_error(&path, e))
}
