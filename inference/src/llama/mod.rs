//! LLaMA-family decoder from a GGUF file (quantized weights), on candle.
//!
//! Paper: Touvron et al., "LLaMA" (2023), <https://arxiv.org/abs/2302.13971>. Reference
//! implementation: llama.cpp (`llama.cpp/src/llama.cpp`), whose GGUF layout this reads; the
//! forward pass is candle-transformers' `quantized_llama` (RMSNorm, RoPE in llama.cpp's
//! adjacent-pair layout, grouped-query attention, SwiGLU, KV cache).
//!
//! This is the first slice of the generator: load, tokenize (from the GGUF metadata when there
//! is no `tokenizer.json`), chat prompt, next-token logits and greedy decoding for one sequence.
//! Batched decoding across sequences, sampling and streaming build on it.

mod tokenizer;

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::Tokenizer;

pub use tokenizer::tokenizer_from_gguf;

use crate::error::{InferenceError, Result};

/// A loaded GGUF decoder for one sequence at a time (`&mut self`: it owns its KV cache).
///
/// Cloning is cheap and shares the weights (reference-counted quantized tensors): keep one
/// loaded model (in an `Arc` if you like) and clone a session per request or thread, each with
/// its own KV cache.
#[derive(Clone)]
pub struct LlamaGguf {
    weights: ModelWeights,
    tokenizer: Tokenizer,
    context_length: usize,
    end_of_turn: Vec<u32>,
    path: PathBuf,
}

impl LlamaGguf {
    /// Opens a GGUF file; its tokenizer comes from `tokenizer.json` beside it when there is one,
    /// else from the GGUF metadata.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(InferenceError::MissingFile {
                path: path.to_path_buf(),
                what: "the GGUF model",
            });
        }
        let bad = |reason: String| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = fs_err::File::open(path).map_err(|e| bad(e.to_string()))?;
        let content =
            Content::read(&mut file).map_err(|e| bad(format!("not a readable GGUF file: {e}")))?;
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if architecture != "llama" {
            return Err(InferenceError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "architecture '{architecture}' (LLaMA-family 'llama' is supported)"
                ),
            });
        }
        let context_length = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(2048) as usize;
        let sibling = path.with_file_name("tokenizer.json");
        let tokenizer = if sibling.is_file() {
            Tokenizer::from_file(&sibling).map_err(|e| InferenceError::BadModelFile {
                path: sibling.clone(),
                reason: format!("not a tokenizer: {e}"),
            })?
        } else {
            tokenizer_from_gguf(&content, path)?
        };
        let end_of_turn = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        check_shapes(&content, path)?;
        let weights = if content
            .tensor_infos
            .values()
            .any(|t| t.ggml_dtype == GgmlDType::Q4_1)
        {
            let (content, mut cursor) =
                requantize_q4_1(&content, &mut file).map_err(|e| bad(e.to_string()))?;
            ModelWeights::from_gguf(content, &mut cursor, &Device::Cpu)
        } else {
            ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
        }
        .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            weights,
            tokenizer,
            context_length,
            end_of_turn,
            path: path.to_path_buf(),
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, special tokens recognised, no BOS added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| InferenceError::Invalid(format!("cannot tokenize: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| InferenceError::Invalid(format!("cannot decode: {e}")))
    }

    /// A one-turn chat prompt in the ChatML template (SmolLM2's `<|im_start|>` / `<|im_end|>`).
    pub fn chat_prompt(&self, user: &str) -> String {
        format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
    }

    /// Token ids that end an assistant turn.
    pub fn end_of_turn(&self) -> &[u32] {
        &self.end_of_turn
    }

    fn check_length(&self, tokens: usize) -> Result<()> {
        if tokens > self.context_length {
            return Err(InferenceError::Invalid(format!(
                "{tokens} tokens exceed the model's context of {}",
                self.context_length
            )));
        }
        Ok(())
    }

    fn step(&mut self, id: u32, position: usize) -> Result<Vec<f32>> {
        let compute = |source| InferenceError::Compute {
            model: self.path.clone(),
            source,
        };
        let input = Tensor::new(&[id], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(compute)?;
        let logits = self.weights.forward(&input, position).map_err(compute)?;
        logits
            .squeeze(0)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(compute)
    }

    /// Runs a fresh sequence's whole prompt in one forward pass (a real prefill: one matrix
    /// product per weight for all positions); returns the next-token logits after it.
    pub fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.check_length(ids.len())?;
        if ids.is_empty() {
            return Err(InferenceError::Invalid("empty prompt".into()));
        }
        let compute = |source| InferenceError::Compute {
            model: self.path.clone(),
            source,
        };
        let input = Tensor::new(ids, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(compute)?;
        let logits = self.weights.forward(&input, 0).map_err(compute)?;
        logits
            .squeeze(0)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(compute)
    }

    /// Feeds one more token at `position` of the current sequence; returns the next logits.
    pub fn decode_step(&mut self, id: u32, position: usize) -> Result<Vec<f32>> {
        self.check_length(position + 1)?;
        self.step(id, position)
    }

    /// Next-token logits after each prefix of `ids` (a fresh sequence).
    pub fn logits_per_position(&mut self, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.check_length(ids.len())?;
        ids.iter()
            .enumerate()
            .map(|(position, &id)| self.step(id, position))
            .collect()
    }

    /// Greedy continuation of `prompt` (a fresh sequence), at most `max_tokens`, stopping after
    /// an end-of-turn token (which is returned).
    pub fn greedy(&mut self, prompt: &[u32], max_tokens: usize) -> Result<Vec<u32>> {
        self.check_length(prompt.len() + max_tokens)?;
        let Some((&last, head)) = prompt.split_last() else {
            return Err(InferenceError::Invalid("empty prompt".into()));
        };
        for (position, &id) in head.iter().enumerate() {
            self.step(id, position)?;
        }
        let mut logits = self.step(last, head.len())?;
        let mut out = Vec::with_capacity(max_tokens);
        for _ in 0..max_tokens {
            let next = argmax(&logits);
            out.push(next);
            if self.end_of_turn.contains(&next) {
                break;
            }
            logits = self.step(next, prompt.len() + out.len() - 1)?;
        }
        Ok(out)
    }
}

/// Rewrites a GGUF in memory with its Q4_1 tensors requantized to Q8_0 (every other tensor
/// as it was). candle's Q4_1 dot product is scalar, while Q8_0 has an AVX2 kernel chosen at
/// run time; Q8_0's 8-bit grid holds Q4_1's 16 levels per block almost exactly, so logits move
/// far less than Q4_1 itself moved them (the reference fixtures' tolerances still hold). Q4_0,
/// which would read fewer bytes per token, does not: a logit moves by 4 and the greedy answer
/// changes, which the fixture tests catch.
fn requantize_q4_1(
    content: &Content,
    file: &mut fs_err::File,
) -> candle_core::Result<(Content, std::io::Cursor<Vec<u8>>)> {
    let device = Device::Cpu;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(file, name, &device)?;
        let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
            QTensor::quantize(&tensor.dequantize(&device)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &candle_core::quantized::gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut cursor = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut cursor, &metadata, &tensor_refs)?;
    cursor.set_position(0);
    let rewritten = Content::read(&mut cursor)?;
    Ok((rewritten, cursor))
}

/// Checks every weight's shape against the hyperparameters before loading, so that a wrong
/// shape is refused with the tensor's name instead of failing inside a matrix product later.
fn check_shapes(content: &Content, path: &Path) -> Result<()> {
    let bad = |reason: String| InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason,
    };
    let number = |key: &str| {
        content
            .metadata
            .get(key)
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .ok_or_else(|| bad(format!("no '{key}' in the GGUF metadata")))
    };
    let hidden = number("llama.embedding_length")?;
    let heads = number("llama.attention.head_count")?;
    let kv_heads = number("llama.attention.head_count_kv")?;
    let layers = number("llama.block_count")?;
    if heads == 0 || hidden % heads != 0 {
        return Err(bad(format!(
            "{hidden} embedding dims do not split into {heads} heads"
        )));
    }
    let kv = kv_heads * (hidden / heads);
    let shape_of = |name: &str| {
        content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims().to_vec())
    };
    let vocab = shape_of("token_embd.weight")
        .and_then(|d| d.first().copied())
        .unwrap_or(0);
    let ff = shape_of("blk.0.ffn_up.weight")
        .and_then(|d| d.first().copied())
        .unwrap_or(0);
    let mut expected: Vec<(String, Vec<usize>)> = vec![
        ("token_embd.weight".into(), vec![vocab, hidden]),
        ("output_norm.weight".into(), vec![hidden]),
    ];
    if content.tensor_infos.contains_key("output.weight") {
        expected.push(("output.weight".into(), vec![vocab, hidden]));
    }
    for layer in 0..layers {
        for (name, dims) in [
            ("attn_q", vec![hidden, hidden]),
            ("attn_k", vec![kv, hidden]),
            ("attn_v", vec![kv, hidden]),
            ("attn_output", vec![hidden, hidden]),
            ("attn_norm", vec![hidden]),
            ("ffn_gate", vec![ff, hidden]),
            ("ffn_up", vec![ff, hidden]),
            ("ffn_down", vec![hidden, ff]),
            ("ffn_norm", vec![hidden]),
        ] {
            expected.push((format!("blk.{layer}.{name}.weight"), dims));
        }
    }
    for (name, dims) in expected {
        match shape_of(&name) {
            None => return Err(bad(format!("tensor '{name}' is missing"))),
            Some(found) if found != dims => {
                return Err(bad(format!(
                    "tensor '{name}' has shape {found:?}, expected {dims:?}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// How tokens are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplingParams {
    /// At most this many new tokens.
    pub max_tokens: usize,
    /// 0 (or less) is greedy.
    pub temperature: f64,
    /// Nucleus sampling threshold (1.0: off).
    pub top_p: f64,
    /// Seed of the sampler: the same seed, prompt and model give the same tokens.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 42,
        }
    }
}

impl LlamaGguf {
    /// Generates a continuation of `prompt` (a fresh sequence), calling `on_text` with each
    /// piece of text as soon as its tokens decode to whole characters; stops after an
    /// end-of-turn token, at `max_tokens`, or when `on_text` returns false. Returns the ids.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: SamplingParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Vec<u32>> {
        self.check_length(prompt.len() + params.max_tokens)?;
        let Some((&last, head)) = prompt.split_last() else {
            return Err(InferenceError::Invalid("empty prompt".into()));
        };
        let temperature = (params.temperature > 0.0).then_some(params.temperature);
        let top_p = (params.top_p < 1.0).then_some(params.top_p);
        let mut sampler =
            candle_transformers::generation::LogitsProcessor::new(params.seed, temperature, top_p);
        for (position, &id) in head.iter().enumerate() {
            self.step(id, position)?;
        }
        let mut logits = self.step(last, head.len())?;
        let mut out: Vec<u32> = Vec::with_capacity(params.max_tokens);
        let mut printed = 0;
        while out.len() < params.max_tokens {
            let compute = |source| InferenceError::Compute {
                model: self.path.clone(),
                source,
            };
            let next = sampler
                .sample(&Tensor::new(logits.as_slice(), &Device::Cpu).map_err(compute)?)
                .map_err(compute)?;
            out.push(next);
            if self.end_of_turn.contains(&next) {
                break;
            }
            // Decode everything so far and emit only the new, complete characters.
            let text = self
                .tokenizer
                .decode(&out, true)
                .map_err(|e| InferenceError::Invalid(e.to_string()))?;
            if text.len() > printed && !text.ends_with('\u{fffd}') {
                if !on_text(&text[printed..]) {
                    break;
                }
                printed = text.len();
            }
            logits = self.step(next, prompt.len() + out.len() - 1)?;
        }
        Ok(out)
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &value) in logits.iter().enumerate() {
        if value > logits[best] {
            best = i;
        }
    }
    best as u32
}
