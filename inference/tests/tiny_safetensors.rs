//! A tiny random LLaMA in Hugging Face layout (`config.json`, `model.safetensors`,
//! `tokenizer.json`) written by the test: provdb's logits against candle-transformers' own
//! LLaMA (which rotates halves, so this also checks the query/key permutation at load), and
//! bad folders refused with the file named.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::llama as reference;
use provdb_inference::llama::Llama;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::tiny_llama::tokens;

const HIDDEN: usize = 32;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const LAYERS: usize = 2;
const FF: usize = 48;

fn config_json(vocab: usize, tied: bool) -> String {
    serde_json::json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": HIDDEN,
        "intermediate_size": FF,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "num_hidden_layers": LAYERS,
        "vocab_size": vocab,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tied,
        "hidden_act": "silu"
    })
    .to_string()
}

fn write_tokenizer(path: &Path) {
    let vocab: Vocab = tokens()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, vec![("h".into(), "e".into())])
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, false)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    tokenizer.add_special_tokens(&[
        AddedToken::from("<|im_start|>", true),
        AddedToken::from("<|im_end|>", true),
    ]);
    tokenizer.save(path, false).unwrap();
}

pub(crate) fn write_model(dir: &Path, tied: bool) -> usize {
    let vocab = tokens().len();
    let device = Device::Cpu;
    let random = |dims: &[usize]| Tensor::randn(0f32, 0.3, dims, &device).unwrap();
    let norm = |n: usize| (Tensor::randn(0f32, 0.1, n, &device).unwrap() + 1.0).unwrap();
    let kv = KV_HEADS * HIDDEN / HEADS;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert("model.embed_tokens.weight".into(), random(&[vocab, HIDDEN]));
    tensors.insert("model.norm.weight".into(), norm(HIDDEN));
    if !tied {
        tensors.insert("lm_head.weight".into(), random(&[vocab, HIDDEN]));
    }
    for layer in 0..LAYERS {
        let p = format!("model.layers.{layer}");
        for (name, dims) in [
            ("self_attn.q_proj", [HIDDEN, HIDDEN]),
            ("self_attn.k_proj", [kv, HIDDEN]),
            ("self_attn.v_proj", [kv, HIDDEN]),
            ("self_attn.o_proj", [HIDDEN, HIDDEN]),
            ("mlp.gate_proj", [FF, HIDDEN]),
            ("mlp.up_proj", [FF, HIDDEN]),
            ("mlp.down_proj", [HIDDEN, FF]),
        ] {
            tensors.insert(format!("{p}.{name}.weight"), random(&dims));
        }
        tensors.insert(format!("{p}.input_layernorm.weight"), norm(HIDDEN));
        tensors.insert(format!("{p}.post_attention_layernorm.weight"), norm(HIDDEN));
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config_json(vocab, tied)).unwrap();
    write_tokenizer(&dir.join("tokenizer.json"));
    vocab
}

/// candle-transformers' LLaMA: logits after the last token of `ids`.
fn reference_logits(dir: &Path, ids: &[u32]) -> Vec<f32> {
    let device = Device::Cpu;
    let config: reference::LlamaConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let config = config.into_config(false);
    let files = [dir.join("model.safetensors")];
    // SAFETY: the test's own file, not modified while mapped.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, &device) }.unwrap();
    let model = reference::Llama::load(vb, &config).unwrap();
    let mut cache = reference::Cache::new(false, DType::F32, &config, &device).unwrap();
    let input = Tensor::new(ids, &device).unwrap().unsqueeze(0).unwrap();
    let logits = model.forward(&input, 0, &mut cache).unwrap();
    logits.squeeze(0).unwrap().to_vec1().unwrap()
}

#[test]
fn safetensors_logits_match_candle_transformers_llama() {
    for tied in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), tied);
        let mut model = Llama::load(dir.path()).unwrap();
        let ids = model.encode("<|im_start|>hehe 42 he").unwrap();
        let ours = model.prefill(&ids).unwrap();
        let theirs = reference_logits(dir.path(), &ids);
        let diff = crate::max_abs_diff(&ours, &theirs);
        assert!(
            diff < 1e-4,
            "tied={tied}: provdb and candle differ by {diff}"
        );
        let stepped = model.logits_per_position(&ids).unwrap();
        assert!(crate::max_abs_diff(stepped.last().unwrap(), &ours) < 1e-4);
    }
}

#[test]
fn bad_model_folders_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), false);
    let message = |path: &Path| Llama::load(path).err().unwrap().to_string();

    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    assert!(message(dir.path()).contains("tokenizer.json"));
    write_tokenizer(&dir.path().join("tokenizer.json"));

    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    assert!(
        message(dir.path()).contains("safetensors"),
        "{}",
        message(dir.path())
    );
    std::fs::write(&weights, &bytes).unwrap();

    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"llama\"", "\"mistral\"")).unwrap();
    let error = message(dir.path());
    assert!(
        error.contains("config.json") && error.contains("mistral"),
        "{error}"
    );
    std::fs::write(
        &config,
        text.replace(&format!("\"hidden_size\":{HIDDEN}"), "\"hidden_size\":30"),
    )
    .unwrap();
    assert!(
        message(dir.path()).contains("config.json"),
        "{}",
        message(dir.path())
    );
    std::fs::write(&config, &text).unwrap();
    assert!(Llama::load(dir.path()).is_ok(), "the restored folder loads");
}
