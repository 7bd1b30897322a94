//! `provdb bench embed`: chunks/s of the sentence embedder on 128-token chunks at batch 32,
//! its achieved GFLOP/s, and in the same run the GFLOP/s of a large f32 matrix product through
//! the same library (candle), with the ratio; peak resident memory.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use provdb::inference::{Embedder, EmbedderConfig, model_files};
use serde::Serialize;

use crate::output::print_json;
use crate::process::peak_rss_mb;

/// The options of `provdb-bench embed`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Chunks to embed.
    #[arg(long, default_value_t = 256)]
    pub(crate) chunks: usize,
    /// Side of the square matrices of the matmul baseline.
    #[arg(long, default_value_t = 2048)]
    pub(crate) sgemm_size: usize,
    /// Model directory (default: $PROVDB_MODELS/all-minilm-l6-v2).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text is cut into chunks.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// all-MiniLM-L6-v2: 6 layers, hidden 384, intermediate 1536.
const LAYERS: f64 = 6.0;
const HIDDEN: f64 = 384.0;
const INTERMEDIATE: f64 = 1536.0;

#[derive(Serialize)]
struct Report {
    chunks: usize,
    tokens_per_chunk: f64,
    batch_size: usize,
    seconds: f64,
    chunks_per_s: f64,
    embed_gflops: f64,
    sgemm_gflops: f64,
    sgemm_size: usize,
    ratio_vs_sgemm: f64,
    target_ratio_vs_sgemm: f64,
    peak_rss_mb: f64,
}

/// Multiply-adds of the encoder per token of an `n`-token sequence, times two: Q, K, V and
/// output projections (4 H^2), the feed-forward (2 H I), attention scores and mixing (2 n H).
fn flops_per_token(n: f64) -> f64 {
    2.0 * LAYERS * (4.0 * HIDDEN * HIDDEN + 2.0 * HIDDEN * INTERMEDIATE + 2.0 * n * HIDDEN)
}

/// GFLOP/s of an f32 `size x size` by `size x size` matrix product through candle on the CPU
/// (the library, threads and machine the embedder runs on), best of `repeats` after one
/// warm-up.
fn matmul_gflops(size: usize, repeats: usize) -> anyhow::Result<f64> {
    let device = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (size, size), &device)?;
    let b = Tensor::randn(0f32, 1.0, (size, size), &device)?;
    a.matmul(&b)?;
    let mut best = f64::MAX;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let product = a.matmul(&b)?;
        // Reading one value makes sure the product was computed.
        product.get(0).and_then(|row| row.get(0))?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(2.0 * (size as f64).powi(3) / best / 1e9)
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let dir = args.model.unwrap_or_else(model_files::default_embedder_dir);
    let embedder = Embedder::load(&dir, EmbedderConfig { batch_size: 32 })?;
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let words: Vec<&str> = docs
        .iter()
        .flat_map(|d| d.text.split_whitespace())
        .collect();
    let mut chunks = Vec::with_capacity(args.chunks);
    let mut cursor = 0;
    let mut tokens = 0usize;
    while chunks.len() < args.chunks && !words.is_empty() {
        let mut length = 90;
        let mut text = String::new();
        // Grow the word window until the chunk is 128 tokens with [CLS] and [SEP].
        for _ in 0..80 {
            text = (0..length)
                .map(|i| words[(cursor + i) % words.len()])
                .collect::<Vec<_>>()
                .join(" ");
            if embedder.token_ids(&text)?.len() >= 128 {
                break;
            }
            length += 2;
        }
        tokens += embedder.token_ids(&text)?.len().min(embedder.max_tokens());
        cursor += length;
        chunks.push(text);
    }
    let texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
    embedder.embed(&texts[..texts.len().min(32)])?;
    let started = Instant::now();
    embedder.embed(&texts)?;
    let seconds = started.elapsed().as_secs_f64();
    let tokens_per_chunk = tokens as f64 / texts.len().max(1) as f64;
    let embed_gflops = flops_per_token(tokens_per_chunk) * tokens as f64 / seconds / 1e9;
    let sgemm_gflops = matmul_gflops(args.sgemm_size, 3)?;
    let report = Report {
        chunks: texts.len(),
        tokens_per_chunk,
        batch_size: 32,
        seconds,
        chunks_per_s: texts.len() as f64 / seconds,
        embed_gflops,
        sgemm_gflops,
        sgemm_size: args.sgemm_size,
        ratio_vs_sgemm: embed_gflops / sgemm_gflops,
        target_ratio_vs_sgemm: 0.4,
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "embedder on {} chunks of {:.1} tokens, batch 32",
        report.chunks, report.tokens_per_chunk
    );
    println!(
        "  {:.1} chunks/s, {:.1} GFLOP/s in {:.2} s",
        report.chunks_per_s, report.embed_gflops, report.seconds
    );
    println!(
        "  f32 matmul {n}x{n}x{n}: {:.1} GFLOP/s",
        report.sgemm_gflops,
        n = report.sgemm_size
    );
    println!(
        "  embed / sgemm = {:.2} (target >= 0.4); peak RSS {:.0} MB",
        report.ratio_vs_sgemm, report.peak_rss_mb
    );
    Ok(())
}
