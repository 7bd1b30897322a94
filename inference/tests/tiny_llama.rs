//! A tiny random LLaMA written by the test as a GGUF file (f32 weights, byte-level BPE
//! tokenizer in the metadata): the loader, the tokenizer builder, prefill against one-token
//! steps, and the shape checks, without the real model.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use provdb_inference::InferenceError;
use provdb_inference::llama::Llama;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

const HIDDEN: usize = 16;
const HEADS: u32 = 2;
const KV_HEADS: u32 = 1;
const LAYERS: usize = 2;
const FF: usize = 32;

/// The tiny vocabulary: the 256 byte-level symbols, one merge, two control tokens.
pub(crate) fn tokens() -> Vec<String> {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort();
    let mut tokens: Vec<String> = alphabet.into_iter().map(String::from).collect();
    tokens.extend([
        "he".to_string(),
        "<|im_start|>".to_string(),
        "<|im_end|>".to_string(),
    ]);
    tokens
}

/// Writes a tiny random f32 LLaMA GGUF (`q_rows` != HIDDEN makes a wrong shape).
pub(crate) fn write_gguf(path: &std::path::Path, q_rows: usize) {
    let tokens = tokens();
    let vocab = tokens.len();
    let device = Device::Cpu;
    let tensor = |dims: &[usize]| {
        let t = Tensor::randn(0f32, 0.3, dims, &device).unwrap();
        QTensor::quantize(&t, GgmlDType::F32).unwrap()
    };
    let ones = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &device).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let kv = KV_HEADS as usize * HIDDEN / HEADS as usize;
    let mut named: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), tensor(&[vocab, HIDDEN])),
        ("output_norm.weight".into(), ones(HIDDEN)),
    ];
    for layer in 0..LAYERS {
        let p = format!("blk.{layer}");
        named.push((format!("{p}.attn_q.weight"), tensor(&[q_rows, HIDDEN])));
        named.push((format!("{p}.attn_k.weight"), tensor(&[kv, HIDDEN])));
        named.push((format!("{p}.attn_v.weight"), tensor(&[kv, HIDDEN])));
        named.push((format!("{p}.attn_output.weight"), tensor(&[HIDDEN, HIDDEN])));
        named.push((format!("{p}.attn_norm.weight"), ones(HIDDEN)));
        named.push((format!("{p}.ffn_gate.weight"), tensor(&[FF, HIDDEN])));
        named.push((format!("{p}.ffn_up.weight"), tensor(&[FF, HIDDEN])));
        named.push((format!("{p}.ffn_down.weight"), tensor(&[HIDDEN, FF])));
        named.push((format!("{p}.ffn_norm.weight"), ones(HIDDEN)));
    }
    let types: Vec<Value> = tokens
        .iter()
        .map(|t| Value::I32(if t.starts_with("<|") { 3 } else { 1 }))
        .collect();
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.context_length", Value::U32(64)),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.attention.head_count", Value::U32(HEADS)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS)),
        (
            "llama.rope.dimension_count",
            Value::U32(HIDDEN as u32 / HEADS),
        ),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("h e".into())]),
        ),
        ("tokenizer.ggml.token_type", Value::Array(types)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata, &tensors).unwrap();
}

#[test]
fn a_tiny_gguf_loads_tokenizes_and_prefill_agrees_with_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, HIDDEN);
    let mut model = Llama::load(&path).unwrap();
    let ids = model.encode("<|im_start|>hehe 42").unwrap();
    let he = model.tokenizer().token_to_id("he").unwrap();
    assert_eq!(
        ids[0],
        model.tokenizer().token_to_id("<|im_start|>").unwrap(),
        "control token kept whole"
    );
    assert_eq!(&ids[1..3], &[he, he], "merges applied");
    assert_eq!(ids.len(), 6, "digits split one by one: {ids:?}");
    assert_eq!(model.decode(&ids).unwrap(), "<|im_start|>hehe 42");
    let stepped = model.logits_per_position(&ids).unwrap();
    let prefilled = model.prefill(&ids).unwrap();
    let max_diff = crate::max_abs_diff(stepped.last().unwrap(), &prefilled);
    assert!(
        max_diff < 1e-3,
        "one forward pass and one-token steps disagree by {max_diff}"
    );
    let first = model.greedy(&ids, 5).unwrap();
    assert_eq!(model.greedy(&ids, 5).unwrap(), first);
    let long: Vec<u32> = vec![he; 65];
    assert!(
        matches!(model.prefill(&long), Err(InferenceError::Invalid(m)) if m.contains("context of 64"))
    );
}

#[test]
fn a_wrong_shape_is_refused_with_the_tensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong.gguf");
    write_gguf(&path, HIDDEN + 2);
    let error = Llama::load(&path).err().unwrap();
    let message = error.to_string();
    assert!(
        message.contains("blk.0.attn_q.weight") && message.contains("wrong.gguf"),
        "{message}"
    );
}

#[test]
fn the_forward_pass_matches_candles_quantized_llama_on_f32_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, HIDDEN);
    let mut model = Llama::load(&path).unwrap();
    let ids = model.encode("hehe 42 he").unwrap();
    let ours = model.prefill(&ids).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut reference = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let input = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let theirs: Vec<f32> = reference
        .forward(&input, 0)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let diff = crate::max_abs_diff(&ours, &theirs);
    assert!(diff < 1e-4, "provdb and candle differ by {diff}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, HIDDEN);
    let mut model = Llama::load(&path).unwrap();
    let vocab = model.config().vocab as u32;
    let error = model.prefill(&[1, vocab]).unwrap_err();
    assert!(
        error.to_string().contains("outside the vocabulary"),
        "{error}"
    );
    assert!(model.prefill(&[1, 2]).is_ok(), "the session still works");
}
