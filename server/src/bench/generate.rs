//! `provdb bench generate`: prefill tokens/s (a 128-token prompt in one forward pass) and
//! decode tokens/s (128 greedy tokens, one per step) of the SmolLM2 GGUF at batch 1 on a given
//! number of threads, and in the same run llama.cpp on the same file and thread count
//! (`scripts/bench-llamacpp.sh`, llama-cpp-python from PyPI), with the ratios; peak RSS.

use std::process::Command;
use std::time::Instant;

use provdb::inference::llama::{Llama, argmax};
use provdb::inference::model_files;
use serde::Serialize;
use serde_json::Value;

use super::peak_rss_mb;
use crate::cli::BenchGenerateArgs;
use crate::output::{UserError, print_json};

const PROMPT_TOKENS: usize = 128;
const DECODE_TOKENS: usize = 128;

#[derive(Serialize)]
struct Report {
    threads: usize,
    prompt_tokens: usize,
    decode_tokens: usize,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    llamacpp_prefill_tokens_per_s: Option<f64>,
    llamacpp_decode_tokens_per_s: Option<f64>,
    prefill_ratio_vs_llamacpp: Option<f64>,
    decode_ratio_vs_llamacpp: Option<f64>,
    target_decode_ratio: f64,
    target_prefill_ratio: f64,
    peak_rss_mb: f64,
}

/// llama.cpp's best-of-3 tokens/s at `threads`, or why it could not be measured.
fn llamacpp(threads: usize) -> Result<(f64, f64), String> {
    let output = Command::new("bash")
        .args([
            "scripts/bench-llamacpp.sh",
            "--threads",
            &threads.to_string(),
            "--reps",
            "3",
        ])
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
    let run = &json["runs"][format!("threads={threads}")];
    match (
        run["best_prompt_tps"].as_f64(),
        run["best_decode_tps"].as_f64(),
    ) {
        (Some(prefill), Some(decode)) => Ok((prefill, decode)),
        _ => Err(format!(
            "anchor output without best_prompt_tps/best_decode_tps: {json}"
        )),
    }
}

pub(crate) fn run(args: BenchGenerateArgs) -> anyhow::Result<()> {
    if args.threads == 0 {
        return Err(UserError("--threads must be positive".into()).into());
    }
    // The pool must be sized before any parallel work starts in this process.
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()?;
    let path = args
        .model
        .unwrap_or_else(model_files::default_generator_path);
    let mut model = Llama::load(&path)?;
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
    model.prefill(&prompt)?; // warm-up: pages the weights in
    let mut best_prefill = f64::MAX;
    let mut best_decode = f64::MAX;
    for _ in 0..args.reps.max(1) {
        let started = Instant::now();
        let mut logits = model.prefill(&prompt)?;
        best_prefill = best_prefill.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        for step in 0..DECODE_TOKENS {
            logits = model.decode_step(argmax(&logits), PROMPT_TOKENS + step)?;
        }
        best_decode = best_decode.min(started.elapsed().as_secs_f64());
    }
    let prefill = PROMPT_TOKENS as f64 / best_prefill;
    let decode = DECODE_TOKENS as f64 / best_decode;
    let anchor = if args.no_anchor {
        Err("skipped (--no-anchor)".to_string())
    } else {
        llamacpp(args.threads)
    };
    if let Err(why) = &anchor {
        eprintln!("llama.cpp anchor not measured: {why}");
    }
    let anchor = anchor.ok();
    let report = Report {
        threads: args.threads,
        prompt_tokens: PROMPT_TOKENS,
        decode_tokens: DECODE_TOKENS,
        prefill_tokens_per_s: prefill,
        decode_tokens_per_s: decode,
        llamacpp_prefill_tokens_per_s: anchor.map(|a| a.0),
        llamacpp_decode_tokens_per_s: anchor.map(|a| a.1),
        prefill_ratio_vs_llamacpp: anchor.map(|a| prefill / a.0),
        decode_ratio_vs_llamacpp: anchor.map(|a| decode / a.1),
        target_decode_ratio: 0.8,
        target_prefill_ratio: 0.5,
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "SmolLM2-135M Q4_1, batch 1, {} thread(s), best of {}",
        report.threads,
        args.reps.max(1)
    );
    println!("  provdb:    prefill {prefill:.1} tokens/s, decode {decode:.1} tokens/s");
    if let Some((p, d)) = anchor {
        println!("  llama.cpp: prefill {p:.1} tokens/s, decode {d:.1} tokens/s");
        println!(
            "  ratios: prefill {:.2} (target >= 0.5), decode {:.2} (target >= 0.8)",
            prefill / p,
            decode / d
        );
    }
    println!("  peak RSS {:.0} MB", report.peak_rss_mb);
    Ok(())
}
