//! Per-example projected gradients ([`Trainer::example_gradients`], the basis of training-data
//! influence): each equals the projection of that example's full gradient, computed by
//! autograd and by central finite differences of the loss, whatever batch the example is in;
//! they are bit-identical across runs and thread counts; recording them during training changes
//! nothing the run trains, and gives one per training example.

use std::sync::Arc;

use provdb_inference::llama::LlamaModel;
use provdb_inference::lora::AdapterStore;
use provdb_inference::train::{
    Control, Example, GradientModel, GradientProjection, Trainer, TrainingConfig, cosine,
};

use crate::train::{chats, quick_config, tiny_hf};

const PROJECTION: GradientProjection = GradientProjection { seed: 5, width: 4 };

/// Examples of different lengths, so that a batch pads.
fn examples(model: &LlamaModel) -> Vec<Example> {
    let mut out = chats(model, 3);
    out.push(Example::chat(model, "a longer question about the glacier", "it melts").unwrap());
    out
}

/// A trainer whose B factors are away from zero (else A's gradient is zero by construction).
fn moved_trainer(model: &Arc<LlamaModel>, examples: Vec<Example>) -> Trainer {
    let config = TrainingConfig {
        held_out_fraction: 0.0,
        batch_size: 3,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(model), config, examples).unwrap();
    for (f, factor) in trainer.factors().unwrap().into_iter().enumerate() {
        let b: Vec<f32> = (0..factor.b.len())
            .map(|i| {
                let x = ((i + 1000 * f) as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                0.3 * ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            })
            .collect();
        trainer
            .set_factor(factor.layer, factor.module, &factor.a, &b)
            .unwrap();
    }
    trainer
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn an_examples_projected_gradient_is_the_projection_of_its_full_gradient() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_hf(scratch.path());
    let examples = examples(&model);
    let trainer = moved_trainer(&model, examples.clone());
    let batched = trainer.example_gradients(&examples, &PROJECTION).unwrap();
    assert_eq!(batched.len(), examples.len());
    assert_eq!(batched[0].len(), trainer.gradient_dim(&PROJECTION));
    for (example, projected) in examples.iter().zip(&batched) {
        // Autograd on the example alone, projected afterwards.
        let (_, full) = trainer
            .loss_and_gradients(std::slice::from_ref(example))
            .unwrap();
        let expected = trainer.project_gradient(&full, &PROJECTION).unwrap();
        let scale = max_abs(&expected);
        assert!(scale > 1e-4, "a gradient that says nothing: {scale}");
        let error = projected
            .iter()
            .zip(&expected)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(error <= 1e-4 * scale, "autograd: {error} of {scale}");
    }

    // Central finite differences of the example's mean loss on every factor entry, projected:
    // the same within 2 % of the largest entry (f32 losses, step 1e-2).
    let example = &examples[3];
    let mut probe = moved_trainer(&model, examples.clone());
    let factors = probe.factors().unwrap();
    let loss = |t: &Trainer| t.evaluate(std::slice::from_ref(example)).unwrap().loss;
    let step = 1e-2f32;
    let mut finite = factors.clone();
    for (f, factor) in factors.iter().enumerate() {
        for is_a in [true, false] {
            let count = if is_a { factor.a.len() } else { factor.b.len() };
            for entry in 0..count {
                let mut value = |delta: f32| {
                    let (mut a, mut b) = (factor.a.clone(), factor.b.clone());
                    if is_a {
                        a[entry] += delta;
                    } else {
                        b[entry] += delta;
                    }
                    probe
                        .set_factor(factor.layer, factor.module, &a, &b)
                        .unwrap();
                    loss(&probe)
                };
                let derivative = (value(step) - value(-step)) / (2.0 * step);
                if is_a {
                    finite[f].a[entry] = derivative;
                } else {
                    finite[f].b[entry] = derivative;
                }
            }
            probe
                .set_factor(factor.layer, factor.module, &factor.a, &factor.b)
                .unwrap();
        }
    }
    let expected = probe.project_gradient(&finite, &PROJECTION).unwrap();
    let scale = max_abs(&expected);
    let error = batched[3]
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        error <= 0.02 * scale,
        "finite differences: {error} of {scale}"
    );
    assert!(cosine(&batched[3], &expected) > 0.999);
}

/// The gradients of `examples()` at the moved factors of the model at `model`, as text (one
/// line per example).
fn gradients_text(model: &std::path::Path) -> String {
    let model = LlamaModel::load(model).unwrap();
    let examples = examples(&model);
    let trainer = moved_trainer(&model, examples.clone());
    let rows = trainer.example_gradients(&examples, &PROJECTION).unwrap();
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|v| format!("{:08x}", v.to_bits()))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run by the test below in a child process with a given thread count.
#[test]
#[ignore = "a child of gradients_are_bit_identical_across_runs_and_thread_counts"]
fn print_gradients() {
    let model = std::env::var("PROVDB_INFLUENCE_MODEL").unwrap();
    println!("GRADIENTS\n{}\nEND", gradients_text(model.as_ref()));
}

#[test]
fn gradients_are_bit_identical_across_runs_and_thread_counts() {
    // The tiny model is drawn at random once; every run reads the same files.
    let scratch = tempfile::tempdir().unwrap();
    let dir = tiny_hf(scratch.path()).path().to_path_buf();
    let here = gradients_text(&dir);
    assert_eq!(here, gradients_text(&dir), "two runs");
    for threads in ["1", "2", "3"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "train_influence::print_gradients",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("RAYON_NUM_THREADS", threads)
            .env("PROVDB_INFLUENCE_MODEL", &dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let printed = text
            .split("GRADIENTS\n")
            .nth(1)
            .and_then(|t| t.split("\nEND").next())
            .unwrap_or_else(|| panic!("{text} {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(printed, here, "{threads} threads");
    }
}

#[test]
fn recording_during_training_changes_nothing_trained_and_covers_every_example() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_hf(scratch.path());
    let examples = chats(&model, 10);
    let config = TrainingConfig {
        epochs: 2,
        ..quick_config()
    };
    let mut plain = Trainer::new(Arc::clone(&model), config.clone(), examples.clone()).unwrap();
    plain.run(None, &mut |_| Control::Continue).unwrap();
    let mut recording = Trainer::new(Arc::clone(&model), config, examples.clone()).unwrap();
    assert!(
        recording
            .capture_gradients(GradientProjection { seed: 1, width: 0 })
            .is_err()
    );
    recording.capture_gradients(PROJECTION).unwrap();
    recording.run(None, &mut |_| Control::Continue).unwrap();
    assert_eq!(recording.factors().unwrap(), plain.factors().unwrap());
    assert!(plain.training_gradients().unwrap().is_none());
    let recorded = recording.training_gradients().unwrap().unwrap();
    let (train, held) = recording.example_counts();
    assert_eq!((train, held), (8, 2));
    assert_eq!(recorded.rows.len(), train);
    assert_eq!(recorded.example_indices.len(), train);
    assert!(recorded.example_indices.windows(2).all(|w| w[0] < w[1]));
    for row in &recorded.rows {
        assert_eq!(row.len(), recorded.dim);
        assert!(max_abs(row) > 0.0);
    }
}

#[test]
fn an_answers_gradient_under_the_stored_adapter_is_the_trainers() {
    // Trained, written as PEFT (q/k rows put in rotate-half order), stored and loaded back
    // (and put back in the base's order): the served adapter's gradient is the trainer's.
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_hf(scratch.path());
    let config = TrainingConfig {
        learning_rate: 5e-2,
        epochs: 2,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(&model), config, chats(&model, 12)).unwrap();
    trainer.run(None, &mut |_| Control::Continue).unwrap();
    let folder = scratch.path().join("trained");
    trainer.save_adapter(&folder, "tiny").unwrap();
    let store = AdapterStore::new(scratch.path().join("store"));
    let info = store.add(&folder, None, &model).unwrap();
    let adapter = store
        .load(store.resolve(&info.id).unwrap(), &model)
        .unwrap();
    let scorer = GradientModel::new(Arc::clone(&model)).unwrap();
    let answer = Example::chat(&model, "he 42", "ok he").unwrap();
    let served = scorer.gradient(&adapter, &answer, &PROJECTION).unwrap();
    assert_eq!(served.len(), scorer.gradient_dim(&adapter, &PROJECTION));
    let trained = &trainer.example_gradients(&[answer], &PROJECTION).unwrap()[0];
    assert_eq!(served.len(), trained.len());
    // The served base multiplies with 8-bit activations; the trainer's with f32.
    let similarity = cosine(&served, trained);
    assert!(similarity > 0.99, "cosine {similarity}");
    assert!(
        scorer
            .gradient(&adapter, &Example::new(vec![1], vec![]), &PROJECTION)
            .is_err()
    );
}
