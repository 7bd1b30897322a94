//! Reading a Hugging Face PEFT LoRA folder for a LLaMA-family base.
//!
//! Supported: `peft_type` LORA, any rank (per module too, as `rank_pattern` gives), `lora_alpha`,
//! `use_rslora`, targets among the seven linear layers of a block (`q_proj` … `down_proj`),
//! tensors in f32, f16 or bf16. Refused with a clear error: DoRA, `modules_to_save`, embedding
//! or output-head targets, biases, `fan_in_fan_out`, `alpha_pattern`, a tensor that is not a
//! block's LoRA factor, a layer the base does not have, shapes that do not fit the base.
//!
//! Tensor names: `base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight`
//! and `….mlp.{gate,up,down}_proj.lora_{A,B}.weight`; `lora_A` is `rank × input`, `lora_B` is
//! `output × rank`. The base's query and key rows are in adjacent-pair rotary order (GGUF's, see
//! the safetensors loader), so `lora_B` rows of `q_proj` and `k_proj` are permuted the same way.

use std::collections::BTreeMap;
use std::path::Path;

use provdb_kernels::LowRank;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::{AdapterId, LayerFactors, LoraAdapter, MODULES};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaConfig;

/// The adapter's configuration file.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's weights file.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// The fields of `adapter_config.json` provdb reads; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct PeftConfig {
    #[serde(default)]
    peft_type: Option<String>,
    r: usize,
    lora_alpha: f32,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    target_modules: Option<serde_json::Value>,
}

fn unsupported(dir: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::Unsupported {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_config(dir: &Path) -> Result<PeftConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = fs_err::read_to_string(&path).map_err(|_| InferenceError::MissingFile {
        path: path.clone(),
        what: "the adapter configuration (a PEFT LoRA folder)",
    })?;
    let config: PeftConfig = serde_json::from_str(&text)
        .map_err(|e| bad(&path, format!("not a PEFT LoRA configuration: {e}")))?;
    if let Some(kind) = config.peft_type.as_deref().filter(|k| *k != "LORA") {
        return Err(unsupported(dir, format!("PEFT type {kind} (only LORA)")));
    }
    if config.use_dora {
        return Err(unsupported(dir, "DoRA adapters (use_dora)"));
    }
    if config
        .modules_to_save
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(unsupported(dir, "modules_to_save (fully trained modules)"));
    }
    if config.bias.as_deref().is_some_and(|b| b != "none") {
        return Err(unsupported(dir, "trained biases (bias must be \"none\")"));
    }
    if config.fan_in_fan_out {
        return Err(unsupported(dir, "fan_in_fan_out (Conv1D layers)"));
    }
    if !config.alpha_pattern.is_empty() {
        return Err(unsupported(dir, "alpha_pattern (per-module alpha)"));
    }
    if config.r == 0 || !config.lora_alpha.is_finite() {
        return Err(bad(&path, "r must be positive and lora_alpha a number"));
    }
    if let Some(serde_json::Value::Array(targets)) = &config.target_modules {
        for target in targets.iter().filter_map(|t| t.as_str()) {
            if !MODULES.contains(&target) {
                return Err(unsupported(
                    dir,
                    format!(
                        "target module '{target}' (embedding, head and other non-linear-layer \
                         targets are not served; supported: {})",
                        MODULES.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(config)
}

/// `(input, output)` widths of each module of a block, in [`MODULES`] order: the base's own
/// matrix shapes (`[output, input]`, same order).
pub(crate) fn widths(config: &LlamaConfig) -> [(usize, usize); 7] {
    crate::llama::block_shapes(config).map(|(_, [rows, cols])| (cols, rows))
}

/// Which layer, module and factor a tensor name is.
fn parse_name(name: &str) -> Option<(usize, usize, bool)> {
    let rest = name.strip_prefix("base_model.model.model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    let rest = rest
        .strip_prefix("self_attn.")
        .or_else(|| rest.strip_prefix("mlp."))?;
    let (module, factor) = rest.split_once('.')?;
    let module = MODULES.iter().position(|m| *m == module)?;
    let is_a = match factor {
        "lora_A.weight" => true,
        "lora_B.weight" => false,
        _ => return None,
    };
    Some((layer, module, is_a))
}

/// The bit patterns of a bf16 tensor.
fn bf16_bits(view: &TensorView<'_>) -> Vec<u16> {
    view.data()
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn floats(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Vec<f32>> {
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(bad(
                path,
                format!("tensor '{name}' is {other:?} (f32, f16 or bf16 expected)"),
            ));
        }
    };
    Ok(values)
}

/// `lora_B` (`output × rank` as stored) transposed to `rank × output`, with the rows of
/// `q_proj` and `k_proj` (modules 0 and 1) reordered in each head from rotate-half order to
/// adjacent pairs, as the base's query and key matrices are: row `2i + p` of a head comes from
/// row `i + p·head_dim/2`.
fn expand_layout<T: Copy + Default>(
    b: &[T],
    rank: usize,
    output: usize,
    module: usize,
    head_dim: usize,
) -> Vec<T> {
    let half = head_dim / 2;
    let source = |row: usize| {
        if module > 1 {
            return row;
        }
        let (head, within) = (row / head_dim, row % head_dim);
        head * head_dim + within / 2 + (within % 2) * half
    };
    let mut expand = vec![T::default(); rank * output];
    for o in 0..output {
        let from = &b[source(o) * rank..(source(o) + 1) * rank];
        for (j, &value) in from.iter().enumerate() {
            expand[j * output + o] = value;
        }
    }
    expand
}

/// A factor as stored: its name and bytes (converted to f32 only when its pair is built, so a
/// load holds the file and one pair's floats besides what it keeps).
type Factor<'a> = (String, TensorView<'a>);

/// Reads and checks the adapter in `dir` for a base with `config`; `id` is recorded as is.
pub fn load(dir: &Path, config: &LlamaConfig, id: AdapterId) -> Result<LoraAdapter> {
    let peft = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = fs_err::read(&path).map_err(|_| InferenceError::MissingFile {
        path: path.clone(),
        what: "the adapter weights",
    })?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(&path, format!("not readable safetensors: {e}")))?;
    let widths = widths(config);
    let mut pairs: BTreeMap<(usize, usize), [Option<Factor>; 2]> = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        let Some((layer, module, is_a)) = parse_name(&name) else {
            return Err(unsupported(
                dir,
                format!(
                    "tensor '{name}' is not a LoRA factor of a block's linear layer \
                     (embedding, head, bias and DoRA tensors are not served)"
                ),
            ));
        };
        if layer >= config.layers {
            return Err(bad(
                &path,
                format!("tensor '{name}': the base has {} layers", config.layers),
            ));
        }
        pairs.entry((layer, module)).or_default()[usize::from(!is_a)] = Some((name, view));
    }
    if pairs.is_empty() {
        return Err(bad(&path, "no LoRA factors"));
    }
    let mut layers: Vec<LayerFactors> = (0..config.layers).map(|_| Default::default()).collect();
    let mut scales = vec![[0f32; 7]; config.layers];
    let mut bytes_total = 0;
    let mut max_rank = 0;
    let mut targeted = [false; 7];
    for ((layer, module), [a, b]) in pairs {
        let label = format!("layer {layer} {}", MODULES[module]);
        let (Some((a_name, a)), Some((b_name, b))) = (a, b) else {
            return Err(bad(
                &path,
                format!("{label}: lora_A and lora_B must both be present"),
            ));
        };
        let (input, output) = widths[module];
        let (a_shape, b_shape) = (a.shape(), b.shape());
        let rank = a_shape.first().copied().unwrap_or(0);
        if a_shape != [rank, input] || b_shape != [output, rank] || rank == 0 {
            return Err(bad(
                &path,
                format!(
                    "{label}: lora_A is {a_shape:?} and lora_B {b_shape:?}; this base needs \
                     [r, {input}] and [{output}, r] (an adapter for another base model?)"
                ),
            ));
        }
        let head_dim = config.head_dim();
        let factors = if a.dtype() == Dtype::BF16 && b.dtype() == Dtype::BF16 {
            // Kept as bf16: lossless, half the memory and traffic.
            let expand = expand_layout(&bf16_bits(&b), rank, output, module, head_dim);
            LowRank::from_parts_bf16(rank, input, output, bf16_bits(&a), expand)
        } else {
            let a = floats(&path, &a_name, &a)?;
            let expand =
                expand_layout(&floats(&path, &b_name, &b)?, rank, output, module, head_dim);
            LowRank::from_parts(rank, input, output, a, expand)
        }
        .map_err(|e| bad(&path, format!("{label}: {e}")))?;
        bytes_total += factors.byte_size();
        max_rank = max_rank.max(rank);
        targeted[module] = true;
        scales[layer][module] = if peft.use_rslora {
            peft.lora_alpha / (rank as f32).sqrt()
        } else {
            peft.lora_alpha / rank as f32
        };
        layers[layer][module] = Some(factors);
    }
    let targets = MODULES
        .iter()
        .zip(targeted)
        .filter_map(|(m, t)| t.then_some(*m))
        .collect();
    Ok(LoraAdapter {
        id,
        layers,
        scales,
        rank: max_rank,
        targets,
        bytes: bytes_total,
        base_shape: config.adapter_shape(),
    })
}
