//! `provdb bench generate`: for each thread count (default 1 and 2), prefill tokens/s (a
//! 128-token prompt in one forward pass), decode tokens/s at batch 1 (128 greedy tokens, one
//! per step) and aggregate decode tokens/s at batch 8 (8 sequences, one forward step each per
//! token) of the SmolLM2 GGUF; in the same run llama.cpp on the same file and thread counts
//! (`scripts/bench-llamacpp.sh`, llama-cpp-python from PyPI), with the ratios; peak RSS. The
//! top-level ratios are the worst over the thread counts.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use provdb::inference::llama::{LlamaModel, LogitsWanted, Sequence, StepInput, argmax};
use provdb::inference::model_files;
use serde::Serialize;
use serde_json::Value;

use crate::output::{UserError, print_json};
use crate::process::peak_rss_mb;

/// The options of `provdb-bench generate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Thread counts to measure, for provdb and for llama.cpp (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub(crate) threads: Vec<usize>,
    /// Repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Sequences decoded together in the batched measurement.
    #[arg(long, default_value_t = 8)]
    pub(crate) batch: usize,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text makes the prompt.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Do not measure llama.cpp (no ratio is printed).
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

const PROMPT_TOKENS: usize = 128;
pub(crate) const DECODE_TOKENS: usize = 128;

#[derive(Serialize)]
struct Run {
    threads: usize,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    batch: usize,
    batch_decode_tokens_per_s: f64,
    batch_speedup: f64,
    memory_read_gb_per_s: f64,
    decode_bandwidth_bound_tokens_per_s: f64,
    decode_fraction_of_bandwidth_bound: f64,
    llamacpp_prefill_tokens_per_s: Option<f64>,
    llamacpp_decode_tokens_per_s: Option<f64>,
    prefill_ratio_vs_llamacpp: Option<f64>,
    decode_ratio_vs_llamacpp: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    kernels: &'static str,
    prompt_tokens: usize,
    decode_tokens: usize,
    runs: Vec<Run>,
    prefill_ratio_vs_llamacpp: Option<f64>,
    decode_ratio_vs_llamacpp: Option<f64>,
    target_decode_ratio: f64,
    target_prefill_ratio: f64,
    weight_mb: f64,
    peak_rss_mb: f64,
}

/// llama.cpp's best-of-3 (prefill, decode) tokens/s per thread count, or why not measured.
fn llamacpp(threads: &[usize]) -> Result<Vec<(f64, f64)>, String> {
    let mut args = vec!["scripts/bench-llamacpp.sh".to_string(), "--threads".into()];
    args.extend(threads.iter().map(usize::to_string));
    args.extend(["--reps".into(), "3".into()]);
    let output = Command::new("bash")
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run scripts/bench-llamacpp.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/bench-llamacpp.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("bad anchor output: {e}"))?;
    threads
        .iter()
        .map(|t| {
            let run = &json["runs"][format!("threads={t}")];
            match (
                run["best_prompt_tps"].as_f64(),
                run["best_decode_tps"].as_f64(),
            ) {
                (Some(prefill), Some(decode)) => Ok((prefill, decode)),
                _ => Err(format!("anchor output without threads={t}: {json}")),
            }
        })
        .collect()
}

/// Bytes streamed by the bandwidth probe: far more than any cache.
const PROBE_BYTES: usize = 1 << 30;

/// Read bandwidth of the current pool's threads, GB/s: the best of 3 sums over 1 GiB.
fn read_bandwidth(buffer: &[u64]) -> f64 {
    use rayon::prelude::*;
    let chunk = buffer.len().div_ceil(rayon::current_num_threads());
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let sum: u64 = buffer
            .par_chunks(chunk)
            .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum);
        best = best.min(started.elapsed().as_secs_f64());
    }
    (buffer.len() * 8) as f64 / best / 1e9
}

/// The smallest of `reps` timings, each returned by `f` (which times only what it measures).
fn best_of(reps: usize, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..reps.max(1) {
        best = best.min(f()?);
    }
    Ok(best)
}

/// A fresh prefill of `tokens` into `sequence`; the next-token logits.
fn prefill(
    model: &LlamaModel,
    sequence: &mut Sequence,
    tokens: &[u32],
) -> anyhow::Result<Vec<f32>> {
    sequence.clear();
    let mut inputs = [StepInput {
        sequence,
        tokens,
        logits: LogitsWanted::Last,
    }];
    Ok(model.forward(&mut inputs)?.remove(0).remove(0))
}

/// Seconds for `DECODE_TOKENS` greedy steps of every sequence together, after their prompts.
pub(crate) fn decode(
    model: &LlamaModel,
    sequences: &mut [Sequence],
    prompts: &[&[u32]],
) -> anyhow::Result<f64> {
    let mut next = Vec::with_capacity(sequences.len());
    for (sequence, prompt) in sequences.iter_mut().zip(prompts) {
        next.push([argmax(&prefill(model, sequence, prompt)?)]);
    }
    let started = Instant::now();
    for _ in 0..DECODE_TOKENS {
        let mut inputs: Vec<StepInput<'_>> = sequences
            .iter_mut()
            .zip(&next)
            .map(|(sequence, tokens)| StepInput {
                sequence,
                tokens,
                logits: LogitsWanted::Last,
            })
            .collect();
        let logits = model.forward(&mut inputs)?;
        for (n, l) in next.iter_mut().zip(&logits) {
            n[0] = argmax(&l[0]);
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// (prefill, batch-1 decode, batch decode) tokens/s on the current pool.
fn measure(
    model: &LlamaModel,
    prompt: &[u32],
    batch: usize,
    reps: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    let mut one = [Sequence::new()];
    prefill(model, &mut one[0], prompt)?; // warm-up: pages the weights in
    let prefill_s = best_of(reps, || {
        let started = Instant::now();
        prefill(model, &mut one[0], prompt)?;
        Ok(started.elapsed().as_secs_f64())
    })?;
    let decode_s = best_of(reps, || decode(model, &mut one, &[prompt]))?;
    // Different prompts: each sequence starts at a different offset of the text.
    let prompts: Vec<&[u32]> = (0..batch).map(|i| &prompt[i % 16..]).collect();
    let mut sequences: Vec<Sequence> = (0..batch).map(|_| Sequence::new()).collect();
    let batch_s = best_of(reps, || decode(model, &mut sequences, &prompts))?;
    Ok((
        PROMPT_TOKENS as f64 / prefill_s,
        DECODE_TOKENS as f64 / decode_s,
        (DECODE_TOKENS * batch) as f64 / batch_s,
    ))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.threads.is_empty() || args.threads.contains(&0) || args.batch == 0 {
        return Err(UserError("--threads and --batch must be positive".into()).into());
    }
    let path = args
        .model
        .unwrap_or_else(model_files::default_generator_path);
    let model: Arc<LlamaModel> = LlamaModel::load(&path)?;
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let text: String = docs
        .iter()
        .take(20)
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut prompt = model.encode(&text)?;
    if prompt.len() < PROMPT_TOKENS {
        return Err(
            UserError("the collection's text is too short for a 128-token prompt".into()).into(),
        );
    }
    prompt.truncate(PROMPT_TOKENS);
    let mut measured = Vec::new();
    let mut pools = Vec::new();
    for &threads in &args.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let figures = pool.install(|| measure(&model, &prompt, args.batch, args.reps))?;
        eprintln!(
            "provdb, {threads} thread(s): prefill {:.1}, decode {:.1}, batch {} decode {:.1} tokens/s",
            figures.0, figures.1, args.batch, figures.2
        );
        measured.push((threads, figures));
        pools.push(pool);
    }
    // Peak memory of the model runs, before the bandwidth probe allocates its buffer.
    let peak_rss = peak_rss_mb();
    let probe: Vec<u64> = (0..PROBE_BYTES as u64 / 8).collect();
    let bandwidths: Vec<f64> = pools
        .iter()
        .map(|pool| pool.install(|| read_bandwidth(&probe)))
        .collect();
    let anchor = if args.no_anchor {
        Err("skipped (--no-anchor)".to_string())
    } else {
        llamacpp(&args.threads)
    };
    if let Err(why) = &anchor {
        eprintln!("llama.cpp anchor not measured: {why}");
    }
    let anchor = anchor.ok();
    let runs: Vec<Run> = measured
        .iter()
        .enumerate()
        .map(|(i, &(threads, (prefill, decode, batched)))| {
            let bandwidth = bandwidths[i];
            let reference = anchor.as_ref().map(|a| a[i]);
            let bound = bandwidth * 1e9 / model.weight_bytes() as f64;
            Run {
                threads,
                prefill_tokens_per_s: prefill,
                decode_tokens_per_s: decode,
                batch: args.batch,
                batch_decode_tokens_per_s: batched,
                batch_speedup: batched / decode,
                memory_read_gb_per_s: bandwidth,
                decode_bandwidth_bound_tokens_per_s: bound,
                decode_fraction_of_bandwidth_bound: decode / bound,
                llamacpp_prefill_tokens_per_s: reference.map(|r| r.0),
                llamacpp_decode_tokens_per_s: reference.map(|r| r.1),
                prefill_ratio_vs_llamacpp: reference.map(|r| prefill / r.0),
                decode_ratio_vs_llamacpp: reference.map(|r| decode / r.1),
            }
        })
        .collect();
    let worst = |f: fn(&Run) -> Option<f64>| {
        runs.iter()
            .map(f)
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().reduce(f64::min))
    };
    let report = Report {
        model: path.display().to_string(),
        kernels: provdb::inference::kernels::dot::kernels().name,
        prompt_tokens: PROMPT_TOKENS,
        decode_tokens: DECODE_TOKENS,
        prefill_ratio_vs_llamacpp: worst(|r| r.prefill_ratio_vs_llamacpp),
        decode_ratio_vs_llamacpp: worst(|r| r.decode_ratio_vs_llamacpp),
        runs,
        target_decode_ratio: 0.8,
        target_prefill_ratio: 0.5,
        weight_mb: model.weight_bytes() as f64 / 1e6,
        peak_rss_mb: peak_rss,
    };
    if args.json {
        return print_json(&report);
    }
    print_text(&report, args.reps);
    Ok(())
}

fn print_text(report: &Report, reps: usize) {
    println!(
        "SmolLM2-135M Q4_1 ({:.0} MB of weights, {} kernels), best of {reps}",
        report.weight_mb, report.kernels
    );
    for run in &report.runs {
        println!(
            "  {} thread(s): provdb prefill {:.1} tokens/s, decode {:.1} tokens/s; batch {} decode {:.1} tokens/s ({:.1}x batch 1)",
            run.threads,
            run.prefill_tokens_per_s,
            run.decode_tokens_per_s,
            run.batch,
            run.batch_decode_tokens_per_s,
            run.batch_speedup
        );
        println!(
            "               memory read {:.1} GB/s: weights-per-token bound {:.0} tokens/s, decode reaches {:.2} of it",
            run.memory_read_gb_per_s,
            run.decode_bandwidth_bound_tokens_per_s,
            run.decode_fraction_of_bandwidth_bound
        );
        if let (Some(p), Some(d)) = (
            run.llamacpp_prefill_tokens_per_s,
            run.llamacpp_decode_tokens_per_s,
        ) {
            println!(
                "               llama.cpp prefill {p:.1} tokens/s, decode {d:.1} tokens/s; ratios prefill {:.2} (target >= 0.5), decode {:.2} (target >= 0.8)",
                run.prefill_tokens_per_s / p,
                run.decode_tokens_per_s / d
            );
        }
    }
    println!("  peak RSS {:.0} MB", report.peak_rss_mb);
}
