//! Writing trained factors as a Hugging Face PEFT LoRA folder: `adapter_config.json` and
//! `adapter_model.safetensors` with PEFT's tensor names, f32, which provdb's multi-adapter
//! loader ([`crate::lora::peft`]) and Hugging Face PEFT both read.
//!
//! The trainer works in the base's adjacent-pair rotary order (GGUF's); PEFT files are in the
//! Hugging Face checkpoint's rotate-half order. So `lora_B` rows of `q_proj` and `k_proj` are
//! put back here, the inverse of the loader's permutation: HF row `i + p·head_dim/2` of a head
//! is trained row `2i + p`. Invariant: equal factors give equal bytes (tensors are written in
//! name order, the config with fixed fields), so the same seed gives the same adapter id.

use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::config::TrainingConfig;
use super::factors::{LoraFactors, values};
use crate::error::{InferenceError, Result};
use crate::lora::MODULES;
use crate::lora::peft::{CONFIG_FILE, WEIGHTS_FILE};

/// `lora_B` (`output × rank`, rotary rows in adjacent-pair order) with each head's rows put
/// in rotate-half order.
pub(crate) fn rotate_half_rows(b: &[f32], rank: usize, head_dim: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0f32; b.len()];
    for (hf_row, out_row) in out.chunks_exact_mut(rank).enumerate() {
        let (head, within) = (hf_row / head_dim, hf_row % head_dim);
        let (pair, part) = (within % half, within / half);
        let trained_row = head * head_dim + 2 * pair + part;
        out_row.copy_from_slice(&b[trained_row * rank..(trained_row + 1) * rank]);
    }
    out
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> InferenceError + '_ {
    move |source| InferenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A tensor to write: PEFT name, shape, f32 little-endian bytes.
type NamedTensor = (String, [usize; 2], Vec<u8>);

/// The tensors of the adapter, named as PEFT names them.
fn tensors(factors: &LoraFactors, head_dim: usize) -> Result<Vec<NamedTensor>> {
    let compute = |e: candle_core::Error| InferenceError::Invalid(e.to_string());
    let mut out = Vec::new();
    for factor in factors.all() {
        let module = MODULES[factor.module];
        let part = if factor.module < 4 {
            "self_attn"
        } else {
            "mlp"
        };
        let prefix = format!(
            "base_model.model.model.layers.{}.{part}.{module}",
            factor.layer
        );
        let [(rank, input), (output, _)] = factor.shapes();
        let a = values(&factor.a).map_err(compute)?;
        let mut b = values(&factor.b).map_err(compute)?;
        if factor.module < 2 {
            b = rotate_half_rows(&b, rank, head_dim);
        }
        let bytes = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect();
        out.push((format!("{prefix}.lora_A.weight"), [rank, input], bytes(a)));
        out.push((format!("{prefix}.lora_B.weight"), [output, rank], bytes(b)));
    }
    Ok(out)
}

/// Writes the PEFT folder `dir` (created if needed; the two files are replaced whole).
pub(crate) fn write_peft(
    dir: &Path,
    factors: &LoraFactors,
    config: &TrainingConfig,
    head_dim: usize,
    base_model_name: &str,
) -> Result<()> {
    fs_err::create_dir_all(dir).map_err(io(dir))?;
    let targets: Vec<&str> = MODULES
        .iter()
        .copied()
        .filter(|m| config.targets.iter().any(|t| t == m))
        .collect();
    let peft_config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": 0.0,
        "target_modules": targets,
        "use_rslora": config.use_rslora,
        "use_dora": false,
        "bias": "none",
        "fan_in_fan_out": false,
        "modules_to_save": null,
        "init_lora_weights": true,
        "inference_mode": true,
    });
    let text = serde_json::to_string_pretty(&peft_config)
        .map_err(|e| InferenceError::Invalid(e.to_string()))?;
    write_replacing(&dir.join(CONFIG_FILE), text.as_bytes())?;
    let tensors = tensors(factors, head_dim)?;
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.to_vec(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| InferenceError::Invalid(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = [("format".to_string(), "pt".to_string())].into();
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| InferenceError::Invalid(format!("cannot encode the adapter: {e}")))?;
    write_replacing(&dir.join(WEIGHTS_FILE), &bytes)
}

/// Writes beside, syncs, then renames over `path`: a reader sees the old file or the new one.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    let mut file = fs_err::File::create(&partial).map_err(io(&partial))?;
    std::io::Write::write_all(&mut file, bytes).map_err(io(&partial))?;
    file.sync_all().map_err(io(&partial))?;
    fs_err::rename(&partial, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::rotate_half_rows;

    #[test]
    fn rows_go_back_to_rotate_half_order() {
        // Two heads of width 4, rank 1: trained rows are pairs (x0,y0),(x1,y1) per head.
        let trained = [0.0, 10.0, 1.0, 11.0, 100.0, 110.0, 101.0, 111.0];
        let hf = rotate_half_rows(&trained, 1, 4);
        assert_eq!(hf, vec![0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0]);
    }
}
