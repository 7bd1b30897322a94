//! A tiny random BERT sentence embedder written by the tests (safetensors, config, WordLevel
//! tokenizer), so that indexing with a real `Embedder` runs in milliseconds. Same layout as
//! inference/tests/tiny_bert.rs.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::processors::bert::BertProcessing;

const HIDDEN: usize = 8;
pub(crate) const WORDS: [&str; 12] = [
    "the", "wing", "lift", "flow", "boundary", "layer", "shock", "wave", "heat", "jet", "cone",
    "plate",
];

/// Writes the model into `dir` (weights from a fixed seed, so every call writes the same).
pub(crate) fn write_tiny_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let vocab_size = 4 + WORDS.len();
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": vocab_size, "hidden_size": HIDDEN, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 8}"#,
    )
    .unwrap();
    let device = Device::Cpu;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        Tensor::from_vec(values, shape, &device).unwrap()
    };
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert(
        "embeddings.word_embeddings.weight".into(),
        random(&[vocab_size, HIDDEN]),
    );
    tensors.insert(
        "embeddings.position_embeddings.weight".into(),
        random(&[16, HIDDEN]),
    );
    tensors.insert(
        "embeddings.token_type_embeddings.weight".into(),
        random(&[2, HIDDEN]),
    );
    let mut layer_norm = |name: String| {
        tensors.insert(
            format!("{name}.weight"),
            Tensor::ones(HIDDEN, DType::F32, &device).unwrap(),
        );
        tensors.insert(
            format!("{name}.bias"),
            Tensor::zeros(HIDDEN, DType::F32, &device).unwrap(),
        );
    };
    layer_norm("embeddings.LayerNorm".into());
    layer_norm("encoder.layer.0.attention.output.LayerNorm".into());
    layer_norm("encoder.layer.0.output.LayerNorm".into());
    for (name, rows, cols) in [
        ("attention.self.query", HIDDEN, HIDDEN),
        ("attention.self.key", HIDDEN, HIDDEN),
        ("attention.self.value", HIDDEN, HIDDEN),
        ("attention.output.dense", HIDDEN, HIDDEN),
        ("intermediate.dense", 16, HIDDEN),
        ("output.dense", HIDDEN, 16),
    ] {
        tensors.insert(
            format!("encoder.layer.0.{name}.weight"),
            random(&[rows, cols]),
        );
        tensors.insert(format!("encoder.layer.0.{name}.bias"), random(&[rows]));
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();

    let vocab: HashMap<String, u32> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .chain(WORDS.iter())
        .enumerate()
        .map(|(id, token)| (token.to_string(), id as u32))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
}
