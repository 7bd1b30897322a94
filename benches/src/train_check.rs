//! `provdb bench train --peft-check`: does Hugging Face PEFT read an adapter provdb trained as
//! provdb means it? provdb trains a few steps on a small text, writes the PEFT folder
//! (`Trainer::save_adapter`), and the anchor script loads it with `PeftModel.from_pretrained`
//! over the GGUF base as transformers reads it (dequantized f32). On one prompt the adapter's
//! delta, `logits(with adapter) − logits(base)` at every position and vocabulary entry, is
//! compared between PEFT and two provdb paths:
//!
//! - the trainer's f32 forward pass (`Trainer::logits`): the same dequantized weights as
//!   transformers, so only f32 summation order differs. Its bound is [`TRAINER_TOLERANCE`],
//!   ten times the measured difference of the two bases (1e-4): this is the check that PEFT
//!   reads the files as provdb wrote them. A misread adapter (`lora_B` rows of q/k in the wrong
//!   rotary order, a wrong scale, a transposed factor) moves the delta by about its own size,
//!   and the adapter is trained until that size ([`MIN_EFFECT`]) is far above the bound.
//! - the served path (`AdapterStore` + `Llama`: Q4_1 rows × 8-bit activation blocks). Taking
//!   the delta does not cancel its rounding: the adapted run's activations differ from the
//!   base run's, so their 8-bit rounding errors differ too (measured: the served delta is off
//!   by about as much as the served base is, 1-2.4 logits, evenly over the positions). Each
//!   served run is within its rounding of the f32 logits, so the served delta is bound by
//!   twice the served base's measured difference from PEFT's base, taken in the same run.
//!
//! Above either bound the command fails with exit code 2.

use std::path::Path;
use std::sync::Arc;

use provdb::inference::llama::{Llama, LlamaModel};
use provdb::inference::lora::{AdapterMix, AdapterStore};
use provdb::inference::model_files;
use provdb::inference::train::{Control, Example, Trainer};
use serde::Serialize;
use serde_json::Value;

use crate::output::print_json;
use crate::process::load_average;
use crate::pytorch::run_anchor;
use crate::train::{self, config, set_candle_threads};

/// Largest allowed `max |Δ_trainer − Δ_PEFT|` (logits).
const TRAINER_TOLERANCE: f64 = 1e-3;
/// The served path's bound, as a multiple of `max |base_served − base_PEFT|`.
const SERVED_BOUND_FACTOR: f64 = 2.0;
/// The adapter must move some logit by at least this much (and by twice the served bound),
/// or a misread adapter could pass.
const MIN_EFFECT: f64 = 5.0;
/// The trained adapter: a few steps at a high rate, so its delta is large.
const STEPS: usize = 15;
const LEARNING_RATE: f64 = 2e-3;
const TEXT: &str = "A Datanet is a set of records, each with its contributor, its license and \
    its history. Every answer cites the records it used, and every citation pays the \
    contributors of the cited records. A model trained on a Datanet remembers where its data \
    came from: the adapter names the records it was trained on, and each answer it gives pays \
    the people who wrote them.";
const PROMPT: &str = "What does a Datanet record about each contribution?";

#[derive(Serialize)]
struct Report {
    rank: usize,
    alpha: f32,
    targets: Vec<String>,
    steps: usize,
    prompt_tokens: usize,
    /// `max |Δ_PEFT|`: how much the adapter moves the logits.
    peft_delta_max_abs: f64,
    /// `max |Δ_trainer − Δ_PEFT|` over every position and vocabulary entry.
    trainer_delta_max_abs_diff: f64,
    trainer_tolerance: f64,
    /// `‖Δ_trainer − Δ_PEFT‖₂ / ‖Δ_PEFT‖₂`.
    trainer_delta_rms_relative: f64,
    trainer_base_max_abs_diff: f64,
    /// `max |Δ_served − Δ_PEFT|`.
    served_delta_max_abs_diff: f64,
    /// `SERVED_BOUND_FACTOR · served_base_max_abs_diff`.
    served_tolerance: f64,
    served_delta_rms_relative: f64,
    /// How far the served base (Q4_1 × Q8) is from PEFT's f32 base: the rounding's size.
    served_base_max_abs_diff: f64,
    passed: bool,
    pytorch_versions: Value,
    load_average: [f64; 3],
}

fn read_f32(path: &Path, expected: usize) -> anyhow::Result<Vec<f32>> {
    let bytes = fs_err::read(path)?;
    if bytes.len() != expected * 4 {
        anyhow::bail!(
            "{}: {} bytes, {} expected",
            path.display(),
            bytes.len(),
            expected * 4
        );
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

/// `‖a − b‖₂ / ‖b‖₂`.
fn rms_relative(a: &[f32], b: &[f32]) -> f64 {
    let (mut error, mut norm) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        error += f64::from(x - y).powi(2);
        norm += f64::from(*y).powi(2);
    }
    (error / norm).sqrt()
}

fn flat_delta(with: &[Vec<f32>], without: &[Vec<f32>]) -> Vec<f32> {
    with.iter()
        .zip(without)
        .flat_map(|(w, b)| w.iter().zip(b).map(|(x, y)| x - y))
        .collect()
}

pub(crate) fn run(args: train::Args) -> anyhow::Result<()> {
    set_candle_threads(args.candle_threads);
    let path = args
        .model
        .clone()
        .unwrap_or_else(model_files::default_generator_path);
    let model: Arc<LlamaModel> = LlamaModel::load(&path)?;
    let text_tokens = model.encode(&TEXT.repeat(2))?;
    let examples: Vec<Example> = text_tokens
        .chunks(32)
        .filter(|c| c.len() >= 8)
        .map(|c| Example::new(Vec::new(), c.to_vec()))
        .collect();
    let mut config = config(args.rank, &args.targets, 64);
    config.learning_rate = LEARNING_RATE;
    config.epochs = STEPS.div_ceil(examples.len());
    let prompt = model.encode(&model.chat_prompt(PROMPT))?;
    let mut trainer = Trainer::new(Arc::clone(&model), config.clone(), examples)?;
    let trainer_base = trainer.logits(&prompt)?;
    trainer.run(None, &mut |p| {
        eprintln!(
            "provdb step {}/{}: loss {:.4}",
            p.step, p.total_steps, p.loss
        );
        Control::Continue
    })?;
    let trainer_adapted = trainer.logits(&prompt)?;
    let work = tempfile::tempdir()?;
    let folder = work.path().join("adapter");
    trainer.save_adapter(&folder, "HuggingFaceTB/SmolLM2-135M-Instruct")?;

    let store = AdapterStore::new(work.path().join("store"));
    let info = store.add(&folder, None, &model)?;
    let adapter = Arc::new(store.load(store.resolve(&info.id)?, &model)?);
    let mut session = Llama::new(Arc::clone(&model));
    let served_base = session.score(&prompt)?;
    session.set_adapters(AdapterMix::single(adapter));
    let served_adapted = session.score(&prompt)?;

    let prompt_file = work.path().join("prompt.json");
    fs_err::write(
        &prompt_file,
        serde_json::to_vec(&serde_json::json!({ "tokens": prompt }))?,
    )?;
    let (base_file, delta_file) = (work.path().join("base.f32"), work.path().join("delta.f32"));
    let load = load_average();
    let anchor = run_anchor(&[
        "check".into(),
        "--model".into(),
        path.display().to_string(),
        "--threads".into(),
        args.threads.to_string(),
        "--prompt".into(),
        prompt_file.display().to_string(),
        "--adapter".into(),
        folder.display().to_string(),
        "--out-base".into(),
        base_file.display().to_string(),
        "--out-delta".into(),
        delta_file.display().to_string(),
    ])
    .map_err(|why| anyhow::anyhow!("the PEFT cross-check needs the anchor: {why}"))?;
    let vocab = model.config().vocab;
    let count = prompt.len() * vocab;
    let peft_base = read_f32(&base_file, count)?;
    let peft_delta = read_f32(&delta_file, count)?;

    let served_delta = flat_delta(&served_adapted, &served_base);
    let trainer_delta = flat_delta(&trainer_adapted, &trainer_base);
    let peft_effect = peft_delta
        .iter()
        .map(|v| f64::from(v.abs()))
        .fold(0.0, f64::max);
    let served_diff = max_abs_diff(&served_delta, &peft_delta);
    let trainer_diff = max_abs_diff(&trainer_delta, &peft_delta);
    let served_base_diff = max_abs_diff(&served_base.concat(), &peft_base);
    let served_tolerance = SERVED_BOUND_FACTOR * served_base_diff;
    let effect_enough = peft_effect >= MIN_EFFECT.max(2.0 * served_tolerance);
    let report = Report {
        rank: config.rank,
        alpha: config.alpha,
        targets: config.targets.clone(),
        steps: trainer.step(),
        prompt_tokens: prompt.len(),
        peft_delta_max_abs: peft_effect,
        trainer_delta_max_abs_diff: trainer_diff,
        trainer_tolerance: TRAINER_TOLERANCE,
        trainer_delta_rms_relative: rms_relative(&trainer_delta, &peft_delta),
        trainer_base_max_abs_diff: max_abs_diff(&trainer_base.concat(), &peft_base),
        served_delta_max_abs_diff: served_diff,
        served_tolerance,
        served_delta_rms_relative: rms_relative(&served_delta, &peft_delta),
        served_base_max_abs_diff: served_base_diff,
        passed: effect_enough
            && trainer_diff <= TRAINER_TOLERANCE
            && served_diff <= served_tolerance,
        pytorch_versions: anchor["versions"].clone(),
        load_average: load,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    if !effect_enough {
        anyhow::bail!(
            "PEFT cross-check proves nothing: the adapter moves the logits by only \
             {peft_effect:.3} (at least {MIN_EFFECT} and twice the served bound needed)"
        );
    }
    if !report.passed {
        anyhow::bail!(
            "PEFT cross-check FAILED: PEFT reads provdb's adapter differently (trainer delta \
             off by {trainer_diff:.5}, bound {TRAINER_TOLERANCE}; served delta off by \
             {served_diff:.4}, bound {served_tolerance:.4}; effect {peft_effect:.3})"
        );
    }
    Ok(())
}

fn print_text(report: &Report) {
    println!(
        "PEFT cross-check: rank {} (alpha {}) on {}, {} steps; prompt of {} tokens",
        report.rank,
        report.alpha,
        report.targets.join(","),
        report.steps,
        report.prompt_tokens
    );
    println!(
        "  the adapter moves PEFT's logits by up to {:.3}",
        report.peft_delta_max_abs
    );
    println!(
        "  trainer (f32) delta vs PEFT delta: max abs diff {:.6} (bound {}), RMS {:.1e} of the \
         delta; the f32 bases differ by {:.6}",
        report.trainer_delta_max_abs_diff,
        report.trainer_tolerance,
        report.trainer_delta_rms_relative,
        report.trainer_base_max_abs_diff
    );
    println!(
        "  served (Q4_1 x Q8) delta vs PEFT delta: max abs diff {:.4} (bound {:.4}: twice the \
         bases' difference {:.4}), RMS {:.3} of the delta",
        report.served_delta_max_abs_diff,
        report.served_tolerance,
        report.served_base_max_abs_diff,
        report.served_delta_rms_relative
    );
    println!("  {}", if report.passed { "passed" } else { "FAILED" });
}
