//! A `tokenizers::Tokenizer` built from a GGUF file's metadata, for models that ship no
//! `tokenizer.json`: byte-level BPE (`tokenizer.ggml.model = gpt2`) from `tokenizer.ggml.tokens`
//! and `tokenizer.ggml.merges`, with the control tokens (token type 3) as special tokens.
//!
//! The pre-tokenizer follows llama.cpp's `tokenizer.ggml.pre`: byte-level **without** a prefix
//! space (candle's `Tokenizer::from_gguf` adds one, which gives wrong ids: "Hello world" must
//! be [19556, 905] for SmolLM2); `smollm` also splits every digit apart first.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{InferenceError, Result};

/// GGUF token type of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
const CONTROL_TOKEN: i32 = 3;

fn metadata<'a>(content: &'a Content, key: &str, path: &Path) -> Result<&'a Value> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("no '{key}' in the GGUF metadata (no tokenizer.json given either)"),
        })
}

fn strings<'a>(content: &'a Content, key: &str, path: &Path) -> Result<Vec<&'a str>> {
    let bad = |reason: String| InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason,
    };
    metadata(content, key, path)?
        .to_vec()
        .map_err(|e| bad(format!("'{key}': {e}")))?
        .iter()
        .map(|v| {
            v.to_string()
                .map(String::as_str)
                .map_err(|e| bad(format!("'{key}': {e}")))
        })
        .collect()
}

/// Builds the tokenizer described by the metadata of the GGUF file at `path`.
pub fn tokenizer_from_gguf(content: &Content, path: &Path) -> Result<Tokenizer> {
    let unsupported = |reason: String| InferenceError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let model = metadata(content, "tokenizer.ggml.model", path)?
        .to_string()
        .map_err(|e| unsupported(e.to_string()))?;
    if model != "gpt2" {
        return Err(unsupported(format!(
            "tokenizer model '{model}' (byte-level BPE 'gpt2' is supported)"
        )));
    }
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("default");
    let tokens = strings(content, "tokenizer.ggml.tokens", path)?;
    let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges", path)?
        .into_iter()
        .map(|merge| match merge.split_once(' ') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => Err(InferenceError::BadModelFile {
                path: path.to_path_buf(),
                reason: format!("bad merge '{merge}'"),
            }),
        })
        .collect::<Result<_>>()?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.to_string(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("bad BPE vocabulary: {e}"),
        })?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::default().add_prefix_space(false).use_regex(true);
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    if pre == "smollm" {
        steps.push(Digits::new(true).into());
    }
    steps.push(byte_level.into());
    tokenizer.with_pre_tokenizer(Some(Sequence::new(steps)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(value) => value
            .to_vec()
            .map_err(|e| unsupported(e.to_string()))?
            .iter()
            .map(|v| v.to_i32().unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, kind)| **kind == CONTROL_TOKEN)
        .map(|(token, _)| AddedToken::from(token.to_string(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}
