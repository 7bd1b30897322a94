//! `provdb bench train`: tokens/s of one LoRA training step (rank 8, alpha 16 on q, k, v, o by
//! default; batch 1; sequences of 256 tokens; forward, backward, global-norm clipping at 1 and
//! an AdamW step) on SmolLM2-135M-Instruct through `provdb_inference::train`, and in the same
//! run the same step through PyTorch + Hugging Face PEFT on CPU (`scripts/bench-pytorch.sh`:
//! PyPI torch, peft, transformers and gguf pinned; transformers reads the same GGUF and
//! dequantizes it to f32, as provdb's trainer does), with the ratio. Both sides train on the
//! same token ids (written to a file the script reads), skip the same warm-up steps and report
//! the median timed step; the first step's loss (the base model's, `B = 0` on both sides) is
//! compared as a check that both compute the same thing.
//!
//! The anchor runs when its venv exists, or with `--anchor` (which installs it, ~2.5 GB);
//! `--no-anchor` skips it. `--peft-check` is the other mode ([`crate::train_check`], which
//! `main` runs instead of this one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::inference::train::{Control, Example, Schedule, Trainer, TrainingConfig};
use serde::Serialize;
use serde_json::Value;

use crate::output::{UserError, print_json};
use crate::process::{load_average, peak_rss_mb};
use crate::pytorch::{pytorch_venv, run_anchor};

/// The options of `provdb-bench train`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Timed training steps on each side (after the warm-up steps).
    #[arg(long, default_value_t = 5)]
    pub(crate) steps: usize,
    /// Untimed warm-up steps on each side.
    #[arg(long, default_value_t = 1)]
    pub(crate) warmup: usize,
    /// Tokens per sequence (batch 1).
    #[arg(long, default_value_t = 256)]
    pub(crate) length: usize,
    /// LoRA rank (alpha is twice the rank, PEFT's usual 2r).
    #[arg(long, default_value_t = 8)]
    pub(crate) rank: usize,
    /// Targeted modules (comma-separated PEFT names), the same on both sides.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q_proj,k_proj,v_proj,o_proj"
    )]
    pub(crate) targets: Vec<String>,
    /// Threads of provdb's pool and of torch.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Threads of candle's element-wise pool (sets CANDLE_NUM_THREADS unless it is set): 1 is
    /// the fastest measured, as its spinning worker would compete with gemm's threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) candle_threads: usize,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// The collection whose text makes the training sequences.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Measure PyTorch even when its venv is not installed yet (installs it: ~2.5 GB).
    #[arg(long, conflicts_with = "no_anchor")]
    pub(crate) anchor: bool,
    /// Do not measure PyTorch (no ratio is printed).
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Instead of timing: train a few steps, save the PEFT folder, load it with Hugging Face
    /// PEFT and compare the adapter's effect on the logits with provdb's (exit 2 above the
    /// tolerance).
    #[arg(long, conflicts_with = "no_anchor")]
    pub(crate) peft_check: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The target: provdb at least this fraction of PyTorch's tokens/s.
const TARGET_RATIO: f64 = 0.7;
const LEARNING_RATE: f64 = 1e-4;

#[derive(Serialize)]
struct Report {
    model: String,
    rank: usize,
    alpha: f32,
    targets: Vec<String>,
    sequence_length: usize,
    batch: usize,
    warmup_steps: usize,
    steps: usize,
    threads: usize,
    candle_threads: String,
    provdb_step_seconds: Vec<f64>,
    /// At the median timed step (the headline figure on both sides).
    provdb_tokens_per_second: f64,
    provdb_tokens_per_second_mean: f64,
    provdb_tokens_per_second_best: f64,
    provdb_first_loss: f32,
    pytorch_step_seconds: Option<Vec<f64>>,
    pytorch_tokens_per_second: Option<f64>,
    pytorch_tokens_per_second_mean: Option<f64>,
    pytorch_tokens_per_second_best: Option<f64>,
    pytorch_first_loss: Option<f64>,
    pytorch_versions: Option<Value>,
    pytorch_error: Option<String>,
    /// provdb's median tokens/s over PyTorch's, same run.
    ratio_vs_pytorch: Option<f64>,
    ratio_vs_pytorch_mean: Option<f64>,
    target_ratio: f64,
    target_met: Option<bool>,
    /// `/proc/loadavg` (1, 5, 15 minutes) before provdb's steps, between the two sides, after.
    load_average: [f64; 3],
    load_average_between: [f64; 3],
    load_average_end: [f64; 3],
    peak_rss_mb: f64,
}

/// The generator at `model`, else the default SmolLM2 GGUF, with its path.
pub(crate) fn load_generator(model: Option<&Path>) -> anyhow::Result<(PathBuf, Arc<LlamaModel>)> {
    let path = model.map_or_else(model_files::default_generator_path, Path::to_path_buf);
    let model = LlamaModel::load(&path)?;
    Ok((path, model))
}

/// `count` sequences of `length` tokens cut one after another from the collection's text.
fn sequences(
    model: &LlamaModel,
    collection: &Path,
    count: usize,
    length: usize,
) -> anyhow::Result<Vec<Vec<u32>>> {
    let docs = provdb::smart::read_collection_documents(collection)?;
    let mut tokens = Vec::new();
    for doc in &docs {
        if tokens.len() >= count * length {
            break;
        }
        tokens.extend(model.encode(&format!("{}\n\n", doc.text))?);
    }
    if tokens.len() < count * length {
        return Err(UserError(format!(
            "{} has {} tokens of text, {count} sequences of {length} need more",
            collection.display(),
            tokens.len()
        ))
        .into());
    }
    Ok(tokens
        .chunks(length)
        .take(count)
        .map(<[u32]>::to_vec)
        .collect())
}

/// The run's config: one epoch of the given examples at batch 1, constant rate, nothing held
/// out, PEFT's `alpha = 2r`, clipping at 1 (the default, which the anchor applies too).
pub(crate) fn config(rank: usize, targets: &[String], length: usize) -> TrainingConfig {
    TrainingConfig {
        rank,
        alpha: 2.0 * rank as f32,
        targets: targets.to_vec(),
        learning_rate: LEARNING_RATE,
        warmup_steps: 0,
        schedule: Schedule::Constant,
        epochs: 1,
        batch_size: 1,
        max_length: length,
        held_out_fraction: 0.0,
        ..TrainingConfig::default()
    }
}

/// Sets `CANDLE_NUM_THREADS` (the size of candle's element-wise pool, read once when candle
/// first needs it) unless the caller set it; what is in force.
pub(crate) fn set_candle_threads(threads: usize) -> String {
    if let Some(set) = std::env::var_os("CANDLE_NUM_THREADS") {
        return set.to_string_lossy().into_owned();
    }
    // SAFETY: called first thing in the benchmark, on the main thread, before this process
    // has started any other thread that could read or write the environment.
    unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
    threads.to_string()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// provdb's timed step seconds and the base model's loss on the first sequence.
fn measure_provdb(
    model: &Arc<LlamaModel>,
    config: &TrainingConfig,
    sequences: &[Vec<u32>],
    warmup: usize,
) -> anyhow::Result<(Vec<f64>, f32)> {
    let examples: Vec<Example> = sequences
        .iter()
        .map(|s| Example::new(Vec::new(), s.clone()))
        .collect();
    let mut trainer = Trainer::new(Arc::clone(model), config.clone(), examples.clone())?;
    // Before the first step B = 0: the base model's loss, which PyTorch's first step reports.
    let first_loss = trainer.evaluate(&examples[..1])?.loss;
    let mut seconds = Vec::new();
    let mut step_started = Instant::now();
    trainer.run(None, &mut |progress| {
        let elapsed = step_started.elapsed().as_secs_f64();
        eprintln!(
            "provdb step {}/{}: loss {:.4}, {elapsed:.2} s",
            progress.step, progress.total_steps, progress.loss
        );
        if progress.step > warmup {
            seconds.push(elapsed);
        }
        step_started = Instant::now();
        Control::Continue
    })?;
    Ok((seconds, first_loss))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let candle_threads = set_candle_threads(args.candle_threads);
    if args.steps == 0 || args.threads == 0 || args.length < 2 || args.rank == 0 {
        return Err(UserError(
            "--steps, --threads and --rank must be positive and --length at least 2".into(),
        )
        .into());
    }
    let (path, model) = load_generator(args.model.as_deref())?;
    let config = config(args.rank, &args.targets, args.length);
    config.validate(model.config())?;
    let sequences = sequences(
        &model,
        &args.collection,
        args.warmup + args.steps,
        args.length,
    )?;
    let work = tempfile::tempdir()?;
    let tokens_file = work.path().join("tokens.json");
    fs_err::write(
        &tokens_file,
        serde_json::to_vec(&serde_json::json!({ "sequences": sequences }))?,
    )?;

    let load_start = load_average();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    // The whole run on a pool thread: gemm's and provdb's parallel regions then fork from a
    // worker instead of being injected into the pool from outside at every product.
    let (provdb_seconds, provdb_first_loss) =
        pool.install(|| measure_provdb(&model, &config, &sequences, args.warmup))?;
    drop(pool);
    let load_between = load_average();

    let run_anchor_now =
        !args.no_anchor && (args.anchor || pytorch_venv().join("bin/python").exists());
    let anchor = if run_anchor_now {
        run_anchor(&[
            "train".into(),
            "--model".into(),
            path.display().to_string(),
            "--tokens".into(),
            tokens_file.display().to_string(),
            "--threads".into(),
            args.threads.to_string(),
            "--warmup".into(),
            args.warmup.to_string(),
            "--steps".into(),
            args.steps.to_string(),
            "--rank".into(),
            config.rank.to_string(),
            "--alpha".into(),
            config.alpha.to_string(),
            "--targets".into(),
            config.targets.join(","),
            "--learning-rate".into(),
            LEARNING_RATE.to_string(),
        ])
    } else if args.no_anchor {
        Err("skipped (--no-anchor)".into())
    } else {
        Err(format!(
            "{} is not installed: run with --anchor (installs it, ~2.5 GB) or \
             `bash scripts/bench-pytorch.sh --install-only`",
            pytorch_venv().display()
        ))
    };
    let load_end = load_average();
    if let Err(why) = &anchor {
        eprintln!("PyTorch anchor not measured: {why}");
    }
    let (anchor, pytorch_error) = match anchor {
        Ok(json) => (Some(json), None),
        Err(why) => (None, Some(why)),
    };
    let number = |key: &str| anchor.as_ref().and_then(|a| a[key].as_f64());
    let pytorch_step_seconds = anchor.as_ref().and_then(|a| {
        a["step_seconds"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_f64).collect::<Vec<f64>>())
    });
    let length = args.length as f64;
    let provdb_tps = length / median(&provdb_seconds);
    let provdb_mean = length / (provdb_seconds.iter().sum::<f64>() / provdb_seconds.len() as f64);
    let pytorch_tps = number("tokens_per_second");
    let pytorch_mean = number("tokens_per_second_mean");
    let ratio = pytorch_tps.map(|t| provdb_tps / t);
    let report = Report {
        model: path.display().to_string(),
        rank: config.rank,
        alpha: config.alpha,
        targets: config.targets.clone(),
        sequence_length: args.length,
        batch: 1,
        warmup_steps: args.warmup,
        steps: args.steps,
        threads: args.threads,
        candle_threads,
        provdb_tokens_per_second: provdb_tps,
        provdb_tokens_per_second_mean: provdb_mean,
        provdb_tokens_per_second_best: length
            / provdb_seconds.iter().copied().fold(f64::INFINITY, f64::min),
        provdb_step_seconds: provdb_seconds,
        provdb_first_loss,
        pytorch_step_seconds,
        pytorch_tokens_per_second: pytorch_tps,
        pytorch_tokens_per_second_mean: pytorch_mean,
        pytorch_tokens_per_second_best: number("tokens_per_second_best"),
        pytorch_first_loss: number("first_loss"),
        pytorch_versions: anchor.as_ref().map(|a| a["versions"].clone()),
        pytorch_error,
        ratio_vs_pytorch: ratio,
        ratio_vs_pytorch_mean: pytorch_mean.map(|t| provdb_mean / t),
        target_ratio: TARGET_RATIO,
        target_met: ratio.map(|r| r >= TARGET_RATIO),
        load_average: load_start,
        load_average_between: load_between,
        load_average_end: load_end,
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        return print_json(&report);
    }
    print_text(&report);
    Ok(())
}

fn print_text(report: &Report) {
    println!(
        "LoRA training step: rank {} (alpha {}) on {}, batch 1 x {} tokens, forward + backward + \
         clip + AdamW; {} thread(s), CANDLE_NUM_THREADS={}; {} timed steps after {} warm-up",
        report.rank,
        report.alpha,
        report.targets.join(","),
        report.sequence_length,
        report.threads,
        report.candle_threads,
        report.steps,
        report.warmup_steps
    );
    let row = |name: &str, median: f64, mean: f64, best: f64, loss: Option<f64>| {
        println!(
            "  {name:<16} {median:>7.1} tokens/s (median step; mean {mean:.1}, best {best:.1}); \
             first-step loss {}",
            loss.map_or("-".into(), |l| format!("{l:.4}"))
        );
    };
    row(
        "provdb",
        report.provdb_tokens_per_second,
        report.provdb_tokens_per_second_mean,
        report.provdb_tokens_per_second_best,
        Some(f64::from(report.provdb_first_loss)),
    );
    if let (Some(median), Some(mean), Some(best)) = (
        report.pytorch_tokens_per_second,
        report.pytorch_tokens_per_second_mean,
        report.pytorch_tokens_per_second_best,
    ) {
        row(
            "PyTorch + PEFT",
            median,
            mean,
            best,
            report.pytorch_first_loss,
        );
    }
    if let Some(ratio) = report.ratio_vs_pytorch {
        println!(
            "  ratio vs PyTorch {ratio:.2} (target >= {}: {})",
            report.target_ratio,
            if ratio >= report.target_ratio {
                "met"
            } else {
                "not met"
            }
        );
    }
    let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
    println!(
        "  load average {} before, {} between, {} after; peak RSS {:.0} MB",
        load(report.load_average),
        load(report.load_average_between),
        load(report.load_average_end),
        report.peak_rss_mb
    );
}
