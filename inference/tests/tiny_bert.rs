//! A tiny random BERT written by the test (safetensors, config, tokenizer): loading, pooling
//! and every bad-input path, without the real model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use provdb_inference::{Embedder, EmbedderConfig, InferenceError};
use tokenizers::Tokenizer;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::processors::bert::BertProcessing;

const HIDDEN: usize = 8;
const WORDS: [&str; 8] = [
    "the", "wing", "lift", "flow", "boundary", "layer", "shock", "wave",
];

fn write_model(dir: &Path, query_width: usize) {
    let vocab_size = 4 + WORDS.len();
    let config = serde_json::json!({
        "model_type": "bert", "vocab_size": vocab_size, "hidden_size": HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 6}"#,
    )
    .unwrap();

    let device = Device::Cpu;
    let random = |shape: &[usize]| Tensor::randn(0f32, 0.5, shape, &device).unwrap();
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
    let layer_norm = |tensors: &mut HashMap<String, Tensor>, name: String| {
        tensors.insert(
            format!("{name}.weight"),
            Tensor::ones(HIDDEN, candle_core::DType::F32, &device).unwrap(),
        );
        tensors.insert(
            format!("{name}.bias"),
            Tensor::zeros(HIDDEN, candle_core::DType::F32, &device).unwrap(),
        );
    };
    layer_norm(&mut tensors, "embeddings.LayerNorm".into());
    for layer in 0..2 {
        let prefix = format!("encoder.layer.{layer}");
        for (name, rows, cols) in [
            ("attention.self.query", HIDDEN, query_width),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", 16, HIDDEN),
            ("output.dense", HIDDEN, 16),
        ] {
            tensors.insert(format!("{prefix}.{name}.weight"), random(&[rows, cols]));
            tensors.insert(format!("{prefix}.{name}.bias"), random(&[rows]));
        }
        layer_norm(&mut tensors, format!("{prefix}.attention.output.LayerNorm"));
        layer_norm(&mut tensors, format!("{prefix}.output.LayerNorm"));
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();

    let mut vocab: HashMap<String, u32> = HashMap::new();
    for (id, token) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .chain(WORDS.iter())
        .enumerate()
    {
        vocab.insert(token.to_string(), id as u32);
    }
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

fn tiny() -> (tempfile::TempDir, Embedder) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), HIDDEN);
    let embedder = Embedder::load(dir.path(), EmbedderConfig { batch_size: 2 }).unwrap();
    (dir, embedder)
}

#[test]
fn vectors_are_unit_length_and_independent_of_batching() {
    let (_dir, embedder) = tiny();
    assert_eq!(embedder.dim(), HIDDEN);
    let texts = [
        "the wing",
        "boundary layer flow over the wing",
        "shock",
        "",
        "lift wave lift",
    ];
    let together = embedder.embed(&texts).unwrap();
    assert_eq!(together.len(), texts.len());
    for (text, vector) in texts.iter().zip(&together) {
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
        let alone = embedder.embed(&[text]).unwrap().remove(0);
        let max_diff = crate::max_abs_diff(&alone, vector);
        assert!(
            max_diff < 1e-5,
            "{text:?}: padding leaked into the result ({max_diff})"
        );
    }
    assert_ne!(
        together[0], together[2],
        "different texts, different vectors"
    );
    assert!(embedder.embed(&[]).unwrap().is_empty());
}

#[test]
fn long_texts_are_truncated_to_max_seq_length() {
    let (_dir, embedder) = tiny();
    assert_eq!(embedder.max_tokens(), 6);
    let long = "the wing lift flow boundary layer shock wave the wing";
    let ids = embedder.token_ids(long).unwrap();
    assert_eq!(ids.len(), 6);
    assert_eq!((ids[0], ids[5]), (2, 3), "[CLS] ... [SEP] kept");
    let truncated = embedder.embed(&[long]).unwrap().remove(0);
    let prefix = embedder.embed(&["the wing lift flow"]).unwrap().remove(0);
    assert_eq!(truncated, prefix);
}

#[test]
fn bad_model_folders_give_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), HIDDEN);
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    match Embedder::load(dir.path(), EmbedderConfig::default()) {
        Err(InferenceError::MissingFile { path, .. }) => assert!(path.ends_with("tokenizer.json")),
        other => panic!("expected a missing tokenizer, got {:?}", other.err()),
    }

    write_model(dir.path(), HIDDEN);
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let error = Embedder::load(dir.path(), EmbedderConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(&error, InferenceError::BadModelFile { path, .. } if path.ends_with("model.safetensors")),
        "{error}"
    );

    write_model(dir.path(), HIDDEN + 1);
    let error = Embedder::load(dir.path(), EmbedderConfig::default())
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("query"),
        "the wrong tensor is named: {error}"
    );

    write_model(dir.path(), HIDDEN);
    let config = std::fs::read_to_string(dir.path().join("config.json"))
        .unwrap()
        .replace("\"bert\"", "\"llama\"");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let error = Embedder::load(dir.path(), EmbedderConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(error, InferenceError::Unsupported { .. }),
        "{error}"
    );

    write_model(dir.path(), HIDDEN);
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let error = Embedder::load(dir.path(), EmbedderConfig::default())
        .err()
        .unwrap();
    assert!(error.to_string().contains("config.json"), "{error}");
}
