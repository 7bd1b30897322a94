//! Writes the binary seed files of `fuzz/corpus/` (Parquet, GGUF, PEFT adapters), so that the
//! checked-in seeds are reproducible: `cargo test --workspace -p provdb-fuzz-harness --test
//! seeds -- --ignored` (then the replay test runs them). The text seeds are written by hand,
//! except the bombs: small inputs that decode to far more than their size, each checked here
//! to be refused as too large under the harness's limits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

/// Where `target`'s seeds go: `PROVDB_SEEDS_DIR/<target>` when set (scripts/fuzz.sh writes
/// fresh seeds into its scratch corpus), else `fuzz/corpus/<target>`.
fn corpus(target: &str) -> PathBuf {
    let root = std::env::var_os("PROVDB_SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus"));
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    dir
}

/// The harness reads a flags byte first (bit 0: typed Datanet, bit 1: skip_invalid).
fn parquet_seed(flags: u8, columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let mut bytes = vec![flags];
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None).expect("parquet writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet");
    bytes
}

fn strings(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn write_parquet_seeds() {
    let dir = corpus("ingest_parquet");
    let loose = parquet_seed(
        0,
        vec![
            ("text", strings(&["parquet one", "parquet two"])),
            ("n", Arc::new(Int64Array::from(vec![Some(1), None]))),
        ],
    );
    std::fs::write(dir.join("loose.bin"), loose).expect("write seed");
    let typed = parquet_seed(
        1,
        vec![
            ("text", strings(&["typed one", "typed two"])),
            ("title", strings(&["a", "b"])),
            ("year", Arc::new(Int64Array::from(vec![1961, 1970]))),
            ("score", Arc::new(Float64Array::from(vec![0.5, 1.5]))),
            (
                "peer_reviewed",
                Arc::new(BooleanArray::from(vec![true, false])),
            ),
        ],
    );
    std::fs::write(dir.join("typed.bin"), typed).expect("write seed");
    let wrong_type = parquet_seed(
        3,
        vec![
            ("text", strings(&["wrong year", "fine"])),
            ("year", strings(&["soon", "1999"])),
        ],
    );
    std::fs::write(dir.join("typed-skip-invalid.bin"), wrong_type).expect("write seed");
}

/// Parquet and CSV inputs that decode to far more than their size: (target, file, bytes,
/// what the refusal names). Each stays a few KiB on disk.
fn bombs() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let write = |flags: u8, batch: RecordBatch, dictionary: bool| {
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_dictionary_enabled(dictionary)
            .build();
        let mut bytes = vec![flags];
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
                .expect("parquet writer");
        writer.write(&batch).expect("write batch");
        writer.close().expect("close parquet");
        bytes
    };
    // As a dictionary array: one value, `rows` keys (the bomb is never built whole here).
    let texts = |rows: usize, text: &str| {
        let keys = arrow_array::Int32Array::from(vec![0; rows]);
        let values = Arc::new(StringArray::from(vec![text]));
        let column: ArrayRef =
            Arc::new(arrow_array::DictionaryArray::try_new(keys, values).expect("dictionary"));
        RecordBatch::try_from_iter([("text", column)]).expect("batch")
    };
    let (_, _, rows_limit) = provdb_fuzz_harness::LIMITS;
    // One 512 KiB value in the dictionary, on 5,000 rows: 2.5 GB decoded.
    let dictionary = write(0, texts(5_000, &"d".repeat(512 << 10)), true);
    // 64 plain pages of one 900 KiB run each: 57 MiB once decompressed.
    let pages = write(0, texts(64, &"p".repeat(900 << 10)), false);
    // More rows than the limit, as the footer declares.
    let many = write(0, texts(rows_limit as usize + 1, "t"), true);
    // A CSV of many tiny rows: a few bytes each, an object each once read.
    let mut csv = b"\x00text\n".to_vec();
    for row in 0..=rows_limit {
        csv.extend_from_slice(format!("{row}\n").as_bytes());
    }
    vec![
        (
            "ingest_parquet",
            "bomb-dictionary.bin",
            dictionary,
            "decodes to more than",
        ),
        (
            "ingest_parquet",
            "bomb-pages.bin",
            pages,
            "pages decompress to",
        ),
        ("ingest_parquet", "bomb-rows.bin", many, "rows"),
        ("ingest_csv", "bomb-rows.bin", csv, "more than 10000 rows"),
    ]
}

fn write_bomb_seeds() {
    for (target, file, bytes, _) in bombs() {
        std::fs::write(corpus(target).join(file), bytes).expect("write seed");
    }
}

#[test]
fn bombs_are_small_files_refused_as_too_large() {
    for (target, file, bytes, names) in bombs() {
        assert!(bytes.len() < 64 << 10, "{file}: {} bytes", bytes.len());
        let extension = target.trim_start_matches("ingest_");
        let outcome = provdb_fuzz_harness::ingest_outcome(&bytes, extension).expect("flags byte");
        match outcome {
            Err(error @ provdb::Error::TooLarge { .. }) => {
                let message = error.to_string();
                assert!(message.contains(names), "{target}/{file}: {message}");
                assert!(message.contains("max_"), "names the setting: {message}");
            }
            other => panic!("{target}/{file} was not refused as too large: {other:?}"),
        }
    }
}

/// A tiny f32 LLaMA with a byte-level BPE vocabulary of a few tokens: small enough for the
/// fuzzer's length limit, complete enough to load.
fn tiny_gguf(hidden: usize, vocab_tokens: &[&str], dtype: GgmlDType) -> Vec<u8> {
    let (heads, kv_heads, layers, ff) = (2u32, 1u32, 1usize, 2 * hidden);
    let device = Device::Cpu;
    let tensor = |dims: &[usize]| {
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count).map(|i| ((i % 7) as f32 - 3.0) / 8.0).collect();
        let t = Tensor::from_vec(values, dims, &device).expect("tensor");
        QTensor::quantize(&t, dtype).expect("quantize")
    };
    let ones = |n: usize| {
        let t = Tensor::ones(n, DType::F32, &device).expect("ones");
        QTensor::quantize(&t, GgmlDType::F32).expect("quantize")
    };
    let vocab = vocab_tokens.len();
    let kv = kv_heads as usize * hidden / heads as usize;
    let mut named: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), tensor(&[vocab, hidden])),
        ("output_norm.weight".into(), ones(hidden)),
    ];
    for layer in 0..layers {
        let p = format!("blk.{layer}");
        named.push((format!("{p}.attn_q.weight"), tensor(&[hidden, hidden])));
        named.push((format!("{p}.attn_k.weight"), tensor(&[kv, hidden])));
        named.push((format!("{p}.attn_v.weight"), tensor(&[kv, hidden])));
        named.push((format!("{p}.attn_output.weight"), tensor(&[hidden, hidden])));
        named.push((format!("{p}.attn_norm.weight"), ones(hidden)));
        named.push((format!("{p}.ffn_gate.weight"), tensor(&[ff, hidden])));
        named.push((format!("{p}.ffn_up.weight"), tensor(&[ff, hidden])));
        named.push((format!("{p}.ffn_down.weight"), tensor(&[hidden, ff])));
        named.push((format!("{p}.ffn_norm.weight"), ones(hidden)));
    }
    let types: Vec<Value> = vocab_tokens
        .iter()
        .map(|t| Value::I32(if t.starts_with("<|") { 3 } else { 1 }))
        .collect();
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.context_length", Value::U32(32)),
        ("llama.embedding_length", Value::U32(hidden as u32)),
        ("llama.block_count", Value::U32(layers as u32)),
        ("llama.feed_forward_length", Value::U32(ff as u32)),
        ("llama.attention.head_count", Value::U32(heads)),
        ("llama.attention.head_count_kv", Value::U32(kv_heads)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(
                vocab_tokens
                    .iter()
                    .map(|t| Value::String((*t).into()))
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("h e".into())]),
        ),
        ("tokenizer.ggml.token_type", Value::Array(types)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = named.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, &metadata, &tensors).expect("write gguf");
    bytes.into_inner()
}

fn write_gguf_seeds() {
    let dir = corpus("gguf");
    let tokens = ["h", "e", "l", "o", " ", "he", "<|im_start|>", "<|im_end|>"];
    let f32_model = tiny_gguf(4, &tokens, GgmlDType::F32);
    std::fs::write(dir.join("tiny-f32.gguf"), &f32_model).expect("write seed");
    std::fs::write(
        dir.join("tiny-q8_0.gguf"),
        tiny_gguf(32, &tokens[..4], GgmlDType::Q8_0),
    )
    .expect("write seed");
    // The header and metadata alone: the tensor data cut off.
    std::fs::write(
        dir.join("truncated.gguf"),
        &f32_model[..f32_model.len() / 2],
    )
    .expect("write seed");
}

/// An adapter seed: little-endian u16 length of the configuration, the configuration, the
/// safetensors weights (for the harness's tiny base: hidden 64, kv width 32, two layers).
fn adapter_seed(config: &str, modules: &[(&str, &str, usize, usize)], dtype: DType) -> Vec<u8> {
    let rank = 2;
    let device = Device::Cpu;
    let mut tensors = std::collections::HashMap::new();
    for layer in 0..2 {
        for (group, module, input, output) in modules {
            let prefix = format!("base_model.model.model.layers.{layer}.{group}.{module}");
            let a = Tensor::ones((rank, *input), dtype, &device).expect("lora_A");
            let b = Tensor::ones((*output, rank), dtype, &device).expect("lora_B");
            tensors.insert(format!("{prefix}.lora_A.weight"), a);
            tensors.insert(format!("{prefix}.lora_B.weight"), b);
        }
    }
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    candle_core::safetensors::save(&tensors, file.path()).expect("write safetensors");
    let weights = std::fs::read(file.path()).expect("read safetensors");
    let mut bytes = u16::try_from(config.len())
        .expect("short config")
        .to_le_bytes()
        .to_vec();
    bytes.extend_from_slice(config.as_bytes());
    bytes.extend_from_slice(&weights);
    bytes
}

fn write_adapter_seeds() {
    let dir = corpus("adapter");
    let config = r#"{"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj","v_proj"],"bias":"none"}"#;
    let attention = [
        ("self_attn", "q_proj", 64, 64),
        ("self_attn", "v_proj", 64, 32),
    ];
    std::fs::write(
        dir.join("q-v-f32.bin"),
        adapter_seed(config, &attention, DType::F32),
    )
    .expect("write seed");
    let config = r#"{"r":2,"lora_alpha":8,"use_rslora":true,"target_modules":["down_proj"]}"#;
    let mlp = [("mlp", "down_proj", 128, 64)];
    std::fs::write(
        dir.join("down-bf16.bin"),
        adapter_seed(config, &mlp, DType::BF16),
    )
    .expect("write seed");
    let config = r#"{"r":2,"lora_alpha":2,"target_modules":"all-linear"}"#;
    let mixed = [
        ("self_attn", "o_proj", 64, 64),
        ("mlp", "gate_proj", 64, 128),
    ];
    std::fs::write(
        dir.join("o-gate-f16.bin"),
        adapter_seed(config, &mixed, DType::F16),
    )
    .expect("write seed");
}

#[test]
#[ignore = "writes seed files: scripts/fuzz.sh runs it into its scratch corpus before fuzzing; run by hand to refresh fuzz/corpus"]
fn write_binary_seeds() {
    write_parquet_seeds();
    write_bomb_seeds();
    write_gguf_seeds();
    write_adapter_seeds();
}
