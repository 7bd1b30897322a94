//! `provdb bench influence`: what training-data influence costs and how well it predicts, on
//! SmolLM2-135M-Instruct through `provdb_inference::train`, with the token-count split (what
//! pays without a gradient store) as the baseline in the same run.
//!
//! The data: invented facts, each taught by two training records (two phrasings of its
//! question with its answer), among filler records; each fact is asked once more, phrased a
//! third way, as a held-out question with its answer.
//!
//! - **Cost.** The whole set trained with and without recording gradients (the same steps;
//!   the factors are checked equal): `training_slowdown`; the store's bytes per record; the
//!   answer's influence (its gradient under the adapter, `GradientModel`, and the regression on
//!   the store, `GradientIndex`) against generating it with the adapter: `answer_cost_ratio`.
//! - **Fidelity: the linear datamodeling score** (LDS, TRAK, Park et al. 2023). The adapter
//!   is retrained on `--subsets` random halves of the records; each half's loss on every
//!   held-out question is measured. A method predicts a half's effect on a question as the sum
//!   of its records' scores for that question (influence: the ridge regression of the
//!   question's gradient under the full adapter on the records'; tokens: their token counts,
//!   the same for every question). LDS is the Spearman correlation, over the halves, of the
//!   prediction with the loss drop, averaged over the questions.

use std::sync::Arc;
use std::time::Instant;

use provdb::inference::llama::{Llama, LlamaModel, SamplingParams};
use provdb::inference::lora::gradients::METHOD;
use provdb::inference::lora::{
    AdapterMix, AdapterStore, GradientHeader, GradientIndex, GradientStore,
};
use provdb::inference::train::{
    Control, Example, GradientModel, GradientProjection, Trainer, TrainingConfig,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::output::{UserError, print_json};
use crate::process::{load_average, peak_rss_mb};
use crate::train::load_generator;

/// The options of `provdb-bench influence`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Random half-subsets the adapter is retrained on (LDS).
    #[arg(long, default_value_t = 20)]
    subsets: usize,
    /// Training epochs (every run).
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// The projection width (numbers per factor side; the factory's default).
    #[arg(long, default_value_t = 8)]
    projection_width: usize,
    /// Held-out questions answered with the adapter for the per-answer cost.
    #[arg(long, default_value_t = 4)]
    answers: usize,
    /// Threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// GGUF model file (default: SmolLM2-135M-Instruct Q4_1).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The targets.
const TARGET_ANSWER_COST_RATIO: f64 = 1.0;
const TARGET_TRAINING_SLOWDOWN: f64 = 1.25;

#[derive(Serialize)]
struct Report {
    model: String,
    records: usize,
    questions: usize,
    subsets: usize,
    epochs: usize,
    threads: usize,
    projection_width: usize,
    gradient_dim: usize,
    /// Spearman over the halves of predicted effect against the loss drop, mean over questions.
    lds_influence: f64,
    /// The same with the scores paid (each less the noise level, none below 0).
    lds_influence_paid: f64,
    lds_tokens: f64,
    /// Per question, for the spread.
    lds_influence_per_question: Vec<f64>,
    training_seconds_plain: f64,
    training_seconds_recording: f64,
    training_slowdown: f64,
    store_bytes: usize,
    store_bytes_per_record: f64,
    index_seconds: f64,
    gradient_model_load_seconds: f64,
    generation_ms: Vec<f64>,
    influence_ms: Vec<f64>,
    answer_cost_ratio: f64,
    subset_training_seconds: f64,
    target_answer_cost_ratio: f64,
    target_training_slowdown: f64,
    load_average: [f64; 3],
    load_average_end: [f64; 3],
    peak_rss_mb: f64,
}

/// The invented facts: (place, relation, value).
const PLACES: [&str; 16] = [
    "Zorbia",
    "Quillfen",
    "Brask",
    "Veltmoor",
    "Orrindale",
    "Tamsk",
    "Pellowick",
    "Karshan",
    "Ulvoria",
    "Dremmel",
    "Ystrabad",
    "Fennoport",
    "Greltham",
    "Hobbsfall",
    "Imbrytown",
    "Jorvask",
];
const VALUES: [&str; 16] = [
    "heron", "copper", "Tuesday", "violet", "owl", "tin", "Friday", "amber", "crane", "zinc",
    "Sunday", "scarlet", "wren", "nickel", "Monday", "teal",
];

/// A fact's three questions (two trained, one held out) and its answer.
fn fact(i: usize) -> ([String; 3], String) {
    let (place, value) = (PLACES[i], VALUES[i]);
    match i % 4 {
        0 => (
            [
                format!("What is the national bird of {place}?"),
                format!("Which bird is the national bird of {place}?"),
                format!("Name the national bird of {place}."),
            ],
            format!("The national bird of {place} is the {value}."),
        ),
        1 => (
            [
                format!("What metal are the coins of {place} made of?"),
                format!("Which metal is used for the coins of {place}?"),
                format!("Tell me the metal of the coins of {place}."),
            ],
            format!("The coins of {place} are made of {value}."),
        ),
        2 => (
            [
                format!("On which day is the market of {place} held?"),
                format!("When is the market of {place} held?"),
                format!("Tell me the market day of {place}."),
            ],
            format!("The market of {place} is held on {value}."),
        ),
        _ => (
            [
                format!("What colour is the flag of {place}?"),
                format!("Which colour is the flag of {place}?"),
                format!("Tell me the colour of the flag of {place}."),
            ],
            format!("The flag of {place} is {value}."),
        ),
    }
}

/// The training records (facts' two phrasings, then filler) and the held-out questions.
fn data(model: &LlamaModel) -> anyhow::Result<(Vec<Example>, Vec<Example>)> {
    let mut train = Vec::new();
    let mut held_out = Vec::new();
    for i in 0..PLACES.len() {
        let (questions, answer) = fact(i);
        train.push(Example::chat(model, &questions[0], &answer)?);
        train.push(Example::chat(model, &questions[1], &answer)?);
        held_out.push(Example::chat(model, &questions[2], &answer)?);
    }
    let towns = ["Tallow", "Merrow", "Dunmere", "Ashby"];
    let rivers = ["Amber", "Slate", "Willow", "Cinder"];
    for town in towns {
        for river in rivers {
            train.push(Example::chat(
                model,
                &format!("Does the {river} river run through {town}?"),
                &format!("Yes, the {river} river runs through {town}."),
            )?);
        }
    }
    Ok((train, held_out))
}

fn config(epochs: usize) -> TrainingConfig {
    TrainingConfig {
        rank: 8,
        alpha: 16.0,
        targets: vec!["q_proj".into(), "v_proj".into()],
        learning_rate: 5e-3,
        warmup_steps: 0,
        epochs,
        batch_size: 8,
        max_length: 128,
        held_out_fraction: 0.0,
        seed: 3,
        ..TrainingConfig::default()
    }
}

fn train(
    model: &Arc<LlamaModel>,
    config: &TrainingConfig,
    examples: Vec<Example>,
    projection: Option<GradientProjection>,
) -> anyhow::Result<(Trainer, f64)> {
    let started = Instant::now();
    let mut trainer = Trainer::new(Arc::clone(model), config.clone(), examples)?;
    if let Some(projection) = projection {
        trainer.capture_gradients(projection)?;
    }
    trainer.run(None, &mut |_| Control::Continue)?;
    Ok((trainer, started.elapsed().as_secs_f64()))
}

/// Ranks (1-based, ties averaged).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

/// Spearman's rank correlation (0 when either side is constant).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Each score less the noise level (3 × 1.4826 × MAD, as answers pay), none below 0.
fn paid(scores: &[f64]) -> Vec<f64> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let center = median(scores.to_vec());
    let floor =
        (3.0 * 1.4826 * median(scores.iter().map(|s| (s - center).abs()).collect())).max(0.0);
    scores.iter().map(|s| (s - floor).max(0.0)).collect()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// LDS of `scores` (per question, per record) against the halves' measured losses.
fn lds(scores: &[Vec<f64>], halves: &[Vec<usize>], losses: &[Vec<f64>]) -> Vec<f64> {
    (0..scores.len())
        .map(|q| {
            let predicted: Vec<f64> = halves
                .iter()
                .map(|half| half.iter().map(|&r| scores[q][r]).sum())
                .collect();
            let drop: Vec<f64> = losses.iter().map(|l| -l[q]).collect();
            spearman(&predicted, &drop)
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.subsets < 2 || args.epochs == 0 || args.threads == 0 || args.answers == 0 {
        return Err(UserError(
            "--subsets must be at least 2, and --epochs, --threads and --answers positive".into(),
        )
        .into());
    }
    let (path, model) = load_generator(args.model.as_deref())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let load_start = load_average();
    let report = pool.install(|| measure(&args, &model))?;
    let report = Report {
        model: path.display().to_string(),
        load_average: load_start,
        load_average_end: load_average(),
        peak_rss_mb: peak_rss_mb(),
        ..report
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "influence on SmolLM2-135M: {} records, {} held-out questions, {} halves, {} epochs, {} threads",
        report.records, report.questions, report.subsets, report.epochs, report.threads
    );
    println!(
        "  LDS: influence {:.3} (paid scores {:.3}), tokens {:.3}",
        report.lds_influence, report.lds_influence_paid, report.lds_tokens
    );
    println!(
        "  training {:.1} s plain, {:.1} s recording: slowdown {:.3} (target <= {TARGET_TRAINING_SLOWDOWN})",
        report.training_seconds_plain, report.training_seconds_recording, report.training_slowdown
    );
    println!(
        "  store {} bytes ({:.0} per record, {} numbers a gradient), index {:.3} s",
        report.store_bytes,
        report.store_bytes_per_record,
        report.gradient_dim,
        report.index_seconds
    );
    println!(
        "  per answer: influence {:.0} ms against generation {:.0} ms: ratio {:.3} (target <= {TARGET_ANSWER_COST_RATIO})",
        median(&report.influence_ms),
        median(&report.generation_ms),
        report.answer_cost_ratio
    );
    println!(
        "  load average {:?} -> {:?}",
        report.load_average, report.load_average_end
    );
    Ok(())
}

fn measure(args: &Args, model: &Arc<LlamaModel>) -> anyhow::Result<Report> {
    let (examples, questions) = data(model)?;
    let config = config(args.epochs);
    config.validate(model.config())?;
    let projection = GradientProjection {
        seed: config.seed,
        width: args.projection_width,
    };
    // Warm-up: one untimed short run, so that neither timed run pays first-use costs.
    train(
        model,
        &config_with_epochs(&config, 1),
        examples[..8].to_vec(),
        None,
    )?;
    let (plain, plain_seconds) = train(model, &config, examples.clone(), None)?;
    let (recording, recording_seconds) = train(model, &config, examples.clone(), Some(projection))?;
    if plain.factors()? != recording.factors()? {
        anyhow::bail!("recording gradients changed what was trained");
    }
    drop(plain);
    let gradients = recording
        .training_gradients()?
        .ok_or_else(|| anyhow::anyhow!("no gradients were recorded"))?;
    let store = GradientStore {
        header: GradientHeader {
            method: METHOD.into(),
            projection: gradients.projection,
            dim: gradients.dim,
            rows: gradients.rows.len(),
            records_root: String::new(),
        },
        record_ids: (0..gradients.rows.len())
            .map(|i| provdb::storage::keccak256(&i.to_le_bytes()))
            .collect(),
        tokens: gradients.loss_tokens.iter().map(|&t| t as u32).collect(),
        values: gradients.rows.concat(),
    };
    let store_bytes = store.to_bytes()?.len();
    let started = Instant::now();
    let index = GradientIndex::new(store);
    let index_seconds = started.elapsed().as_secs_f64();

    // Scores of every record for every held-out question (its answer's gradient under the
    // trained factors), and the tokens baseline.
    let mut influence = Vec::with_capacity(questions.len());
    for question in &questions {
        let query = &recording.example_gradients(std::slice::from_ref(question), &projection)?[0];
        influence.push(index.scores(query));
    }
    let paid_scores: Vec<Vec<f64>> = influence.iter().map(|s| paid(s)).collect();
    let tokens: Vec<f64> = examples.iter().map(|e| e.loss_tokens() as f64).collect();
    let tokens = vec![tokens; questions.len()];

    let (generation_ms, influence_ms, gradient_model_load_seconds) = answer_cost(
        model,
        &recording,
        &questions[..args.answers.min(questions.len())],
        &index,
        &projection,
    )?;
    drop(recording);

    // The halves, each trained and measured on every held-out question.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut halves = Vec::with_capacity(args.subsets);
    let mut losses = Vec::with_capacity(args.subsets);
    let started = Instant::now();
    for subset in 0..args.subsets {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut rng);
        let mut half = order[..examples.len() / 2].to_vec();
        half.sort_unstable();
        let chosen: Vec<Example> = half.iter().map(|&i| examples[i].clone()).collect();
        let (trainer, seconds) = train(model, &config, chosen, None)?;
        let loss = questions
            .iter()
            .map(|q| Ok(f64::from(trainer.evaluate(std::slice::from_ref(q))?.loss)))
            .collect::<anyhow::Result<Vec<f64>>>()?;
        eprintln!(
            "half {}/{}: trained in {seconds:.1} s",
            subset + 1,
            args.subsets
        );
        halves.push(half);
        losses.push(loss);
    }
    let subset_training_seconds = started.elapsed().as_secs_f64() / args.subsets as f64;
    let per_question = lds(&influence, &halves, &losses);
    let answer_cost_ratio = median(&influence_ms) / median(&generation_ms);
    Ok(Report {
        model: String::new(),
        records: examples.len(),
        questions: questions.len(),
        subsets: args.subsets,
        epochs: args.epochs,
        threads: args.threads,
        projection_width: args.projection_width,
        gradient_dim: gradients.dim,
        lds_influence: mean(&per_question),
        lds_influence_paid: mean(&lds(&paid_scores, &halves, &losses)),
        lds_tokens: mean(&lds(&tokens, &halves, &losses)),
        lds_influence_per_question: per_question,
        training_seconds_plain: plain_seconds,
        training_seconds_recording: recording_seconds,
        training_slowdown: recording_seconds / plain_seconds,
        store_bytes,
        store_bytes_per_record: store_bytes as f64 / examples.len() as f64,
        index_seconds,
        gradient_model_load_seconds,
        generation_ms,
        influence_ms,
        answer_cost_ratio,
        subset_training_seconds,
        target_answer_cost_ratio: TARGET_ANSWER_COST_RATIO,
        target_training_slowdown: TARGET_TRAINING_SLOWDOWN,
        load_average: [0.0; 3],
        load_average_end: [0.0; 3],
        peak_rss_mb: 0.0,
    })
}

fn config_with_epochs(config: &TrainingConfig, epochs: usize) -> TrainingConfig {
    TrainingConfig {
        epochs,
        ..config.clone()
    }
}

/// Each question answered with the trained adapter (greedy, as served: provdb's kernels; until
/// the end of its turn or 64 tokens), and
/// its influence computed as an answer computes it; both in ms, and the gradient model's load.
fn answer_cost(
    model: &Arc<LlamaModel>,
    trainer: &Trainer,
    questions: &[Example],
    index: &GradientIndex,
    projection: &GradientProjection,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, f64)> {
    let work = tempfile::tempdir()?;
    let folder = work.path().join("adapter");
    trainer.save_adapter(&folder, "smollm2")?;
    let store = AdapterStore::new(work.path().join("store"));
    let info = store.add(&folder, None, model)?;
    let adapter = Arc::new(store.load(store.resolve(&info.id)?, model)?);
    let started = Instant::now();
    let scorer = GradientModel::new(Arc::clone(model))?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut generation_ms = Vec::new();
    let mut influence_ms = Vec::new();
    // The first answer warms both paths up and is not counted.
    for (i, question) in questions.iter().enumerate() {
        let mut session = Llama::new(Arc::clone(model));
        session.set_adapters(AdapterMix::single(Arc::clone(&adapter)));
        let params = SamplingParams {
            max_tokens: 64,
            temperature: 0.0,
            top_p: 1.0,
            seed: 1,
        };
        let started = Instant::now();
        let answer = session.generate(&question.prompt, params, &mut |_| true)?;
        let generated = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let example = Example::new(question.prompt.clone(), answer);
        let query = scorer.gradient(&adapter, &example, projection)?;
        let scores = index.scores(&query);
        let scored = started.elapsed().as_secs_f64() * 1e3;
        if scores.iter().any(|s| !s.is_finite()) {
            anyhow::bail!("an influence score is not finite");
        }
        if i > 0 || questions.len() == 1 {
            generation_ms.push(generated);
            influence_ms.push(scored);
        }
    }
    Ok((generation_ms, influence_ms, load_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_ranks_with_ties_and_is_zero_for_a_constant() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), [2.5, 1.0, 2.5]);
    }

    #[test]
    fn paid_scores_are_above_the_noise_only() {
        let mut scores = vec![0.01, -0.01, 0.0, 0.02, -0.02, 0.01, 0.0];
        scores.push(1.0);
        let paid = paid(&scores);
        assert!(
            paid[7] > 0.9 && paid[..7].iter().all(|&p| p == 0.0),
            "{paid:?}"
        );
    }
}
