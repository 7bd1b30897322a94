//! The trainer's gradients and its resumability: no gradient path is cut (every factor of
//! every targeted module gets a gradient once `B` is away from zero, and autograd agrees with
//! finite differences of the loss on `A` and `B` of several modules, q and k among them); a run
//! cancelled through the callback and resumed from its checkpoints ends bit for bit where an
//! uninterrupted run ends; gradients and steps do not depend on how examples are batched; the
//! three ways of multiplying the frozen base agree, and on SmolLM2 the base kept as stored
//! gives the served logits.

use std::path::Path;
use std::sync::Arc;

use provdb_inference::llama::{Llama, LlamaModel};
use provdb_inference::model_files;
use provdb_inference::train::{
    BaseProduct, CheckpointPolicy, Control, Example, Trainer, TrainingConfig, TrainingOutcome,
};

use crate::train::{chats, quick_config, tiny_gguf, tiny_hf};

/// A deterministic pseudo-random value in `[-0.5, 0.5)` for index `i`.
fn noise(i: usize) -> f32 {
    let x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

#[test]
fn every_factor_gets_a_gradient_that_matches_finite_differences() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_hf(scratch.path());
    let examples = chats(&model, 3);
    let config = TrainingConfig {
        held_out_fraction: 0.0,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(&model), config, examples.clone()).unwrap();
    // With B = 0 the gradient of A is zero by construction; move B away from zero first.
    for (f, factor) in trainer.factors().unwrap().into_iter().enumerate() {
        let b: Vec<f32> = (0..factor.b.len())
            .map(|i| 0.3 * noise(i + 1000 * f))
            .collect();
        trainer
            .set_factor(factor.layer, factor.module, &factor.a, &b)
            .unwrap();
    }
    let (loss, gradients) = trainer.loss_and_gradients(&examples).unwrap();
    assert_eq!(gradients.len(), 2 * 7, "two layers, seven modules");
    for g in &gradients {
        for (name, values) in [("A", &g.a), ("B", &g.b)] {
            let norm: f32 = values.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!(
                norm > 1e-6 && norm.is_finite(),
                "layer {} {} {name}: gradient norm {norm}",
                g.layer,
                g.module
            );
        }
    }
    let evaluated = trainer.evaluate(&examples).unwrap().loss;
    assert!((evaluated - loss).abs() < 1e-5, "{evaluated} vs {loss}");
    // Central differences on the largest-gradient entries of A and B of several modules.
    let factors = trainer.factors().unwrap();
    let step = 1e-2f32;
    for (index, module) in [
        (0, "q_proj"),
        (1, "k_proj"),
        (9, "v_proj"),
        (3, "o_proj"),
        (11, "gate_proj"),
        (13, "down_proj"),
    ] {
        let (factor, gradient) = (&factors[index], &gradients[index]);
        assert_eq!(factor.module, module);
        for is_a in [true, false] {
            let grad = if is_a { &gradient.a } else { &gradient.b };
            let (entry, analytic) = grad
                .iter()
                .copied()
                .enumerate()
                .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
                .unwrap();
            let mut loss_at = |delta: f32| {
                let (mut a, mut b) = (factor.a.clone(), factor.b.clone());
                if is_a {
                    a[entry] += delta;
                } else {
                    b[entry] += delta;
                }
                trainer.set_factor(factor.layer, module, &a, &b).unwrap();
                trainer.evaluate(&examples).unwrap().loss
            };
            let numeric = (loss_at(step) - loss_at(-step)) / (2.0 * step);
            loss_at(0.0);
            let error = (numeric - analytic).abs();
            assert!(
                error < 1e-2 * analytic.abs() + 1e-4,
                "layer {} {module} {}[{entry}]: autograd {analytic}, finite difference {numeric}",
                factor.layer,
                if is_a { "A" } else { "B" }
            );
        }
    }
}

fn adapter_bytes(trainer: &Trainer, dir: &Path) -> Vec<u8> {
    trainer.save_adapter(dir, "tiny").unwrap();
    std::fs::read(dir.join("adapter_model.safetensors")).unwrap()
}

#[test]
fn a_cancelled_run_resumed_from_its_checkpoints_ends_as_an_uninterrupted_run() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_gguf(scratch.path());
    let examples = chats(&model, 16);
    let config = TrainingConfig {
        epochs: 2,
        batch_size: 2,
        grad_accumulation: 2,
        weight_decay: 0.01,
        ..quick_config()
    };
    let new = || Trainer::new(Arc::clone(&model), config.clone(), examples.clone()).unwrap();
    let mut whole = new();
    assert_eq!(whole.total_steps(), 6);
    let whole_outcome = whole.run(None, &mut |_| Control::Continue).unwrap();
    let whole_bytes = adapter_bytes(&whole, &scratch.path().join("whole"));

    let policy = CheckpointPolicy {
        dir: scratch.path().join("checkpoints"),
        every_steps: 2,
    };
    let early = scratch.path().join("early");
    let mut interrupted = new();
    let outcome = interrupted
        .run(Some(&policy), &mut |p| {
            if p.step == 2 {
                // The periodic checkpoint of step 2, kept aside before step 3 replaces it.
                copy_dir(&policy.dir, &early);
            }
            if p.step == 3 {
                Control::Cancel
            } else {
                Control::Continue
            }
        })
        .unwrap();
    assert_eq!(outcome, TrainingOutcome::Cancelled { step: 3 });
    for (dir, expected_step) in [(&policy.dir, 3), (&early, 2)] {
        let mut resumed = new();
        assert!(resumed.restore(dir).unwrap());
        assert_eq!(resumed.step(), expected_step);
        let outcome = resumed.run(None, &mut |_| Control::Continue).unwrap();
        assert_eq!(
            outcome, whole_outcome,
            "from step {expected_step}: same losses"
        );
        let bytes = adapter_bytes(
            &resumed,
            &scratch.path().join(format!("resumed-{expected_step}")),
        );
        assert!(
            bytes == whole_bytes,
            "from step {expected_step}: same adapter bytes"
        );
    }
    // A checkpoint of another config is refused; an empty folder restores nothing.
    let other = TrainingConfig {
        learning_rate: 2e-2,
        ..config.clone()
    };
    let mut mismatched = Trainer::new(Arc::clone(&model), other, examples.clone()).unwrap();
    let error = mismatched.restore(&policy.dir).unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("another"),
        "{error}"
    );
    assert!(!new().restore(&scratch.path().join("none")).unwrap());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn gradients_and_steps_do_not_depend_on_how_examples_are_batched() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_gguf(scratch.path());
    // Responses of different lengths: a per-micro-batch mean would weigh tokens unequally.
    let examples: Vec<Example> = ["ok", "ok he he", "he", "ok ok ok he"]
        .iter()
        .enumerate()
        .map(|(i, answer)| Example::chat(&model, &format!("he {i}"), answer).unwrap())
        .collect();
    let config = |batch_size: usize, grad_accumulation: usize| TrainingConfig {
        batch_size,
        grad_accumulation,
        epochs: 1,
        warmup_steps: 0,
        held_out_fraction: 0.0,
        ..quick_config()
    };
    let trainer = |config: TrainingConfig| {
        let mut trainer = Trainer::new(Arc::clone(&model), config, examples.clone()).unwrap();
        for factor in trainer.factors().unwrap() {
            let b: Vec<f32> = (0..factor.b.len()).map(|i| 0.2 * noise(i)).collect();
            trainer
                .set_factor(factor.layer, factor.module, &factor.a, &b)
                .unwrap();
        }
        trainer
    };
    let (loss, gradients) = trainer(config(4, 1)).loss_and_gradients(&examples).unwrap();
    let (split_loss, split_gradients) =
        trainer(config(1, 1)).loss_and_gradients(&examples).unwrap();
    assert!((loss - split_loss).abs() < 1e-5, "{loss} vs {split_loss}");
    for (x, y) in gradients.iter().zip(&split_gradients) {
        let scale = x.a.iter().chain(&x.b).fold(0f32, |m, v| m.max(v.abs()));
        let diff = crate::max_abs_diff(&x.a, &y.a).max(crate::max_abs_diff(&x.b, &y.b));
        assert!(
            diff <= 1e-4 * scale,
            "layer {} {}: {diff} of {scale}",
            x.layer,
            x.module
        );
    }
    // One optimiser step over all four examples, as one batch or accumulated.
    let step_loss = |batch_size: usize, accumulation: usize| {
        let mut trainer = trainer(config(batch_size, accumulation));
        assert_eq!(trainer.total_steps(), 1);
        match trainer.run(None, &mut |_| Control::Continue).unwrap() {
            TrainingOutcome::Finished { last_loss, .. } => last_loss.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    let whole = step_loss(4, 1);
    assert!(
        (whole - loss).abs() < 1e-5,
        "the step's loss is the mean over its tokens"
    );
    for (batch_size, accumulation) in [(2, 2), (1, 4)] {
        let accumulated = step_loss(batch_size, accumulation);
        assert!(
            (whole - accumulated).abs() < 1e-5,
            "{whole} vs {accumulated}"
        );
    }
}

#[test]
fn every_base_product_gives_the_same_loss_and_gradients() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_hf(scratch.path());
    let examples = chats(&model, 3);
    let config = TrainingConfig {
        held_out_fraction: 0.0,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(&model), config, examples.clone()).unwrap();
    for factor in trainer.factors().unwrap() {
        let b: Vec<f32> = (0..factor.b.len()).map(|i| 0.2 * noise(i + 7)).collect();
        trainer
            .set_factor(factor.layer, factor.module, &factor.a, &b)
            .unwrap();
    }
    let mut results = Vec::new();
    for product in [
        BaseProduct::FrozenLinear,
        BaseProduct::Matmul,
        BaseProduct::AsStored,
    ] {
        trainer.set_base_product(product).unwrap();
        results.push(trainer.loss_and_gradients(&examples).unwrap());
    }
    assert_eq!(
        results[0], results[1],
        "frozen-linear and matmul: the same gemm calls"
    );
    let ((loss, gradients), (stored_loss, stored)) = (&results[0], &results[2]);
    assert!((loss - stored_loss).abs() < 1e-5, "{loss} vs {stored_loss}");
    for (x, y) in gradients.iter().zip(stored) {
        let scale = x.a.iter().chain(&x.b).fold(0f32, |m, v| m.max(v.abs()));
        let diff = crate::max_abs_diff(&x.a, &y.a).max(crate::max_abs_diff(&x.b, &y.b));
        assert!(
            diff <= 1e-4 * scale,
            "layer {} {}: {diff} of {scale}",
            x.layer,
            x.module
        );
    }
}

/// Top-1 of `logits` where `reference`'s top-1 leads its runner-up by at least `margin`.
fn top1_agrees(logits: &[f32], reference: &[f32], margin: f32) -> bool {
    let top = provdb_inference::llama::argmax(reference);
    let runner_up = reference
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != top as usize)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    reference[top as usize] - runner_up < margin || provdb_inference::llama::argmax(logits) == top
}

#[test]
fn on_smollm2_both_base_representations_train_on_the_served_model() {
    let model = LlamaModel::load(&model_files::default_generator_path())
        .unwrap_or_else(|e| panic!("{e} (models are fetched by scripts/fetch-models.sh)"));
    let examples =
        vec![Example::chat(&model, "What is provenance?", "Where data comes from.").unwrap()];
    let config = TrainingConfig {
        held_out_fraction: 0.0,
        max_length: 128,
        ..TrainingConfig::default()
    };
    let ids = examples[0].prompt.clone();
    let served = Llama::new(Arc::clone(&model)).score(&ids).unwrap();
    let mut trainer = Trainer::with_base_product(
        Arc::clone(&model),
        config,
        examples.clone(),
        BaseProduct::AsStored,
    )
    .unwrap();
    let mut losses = Vec::new();
    for product in [BaseProduct::AsStored, BaseProduct::FrozenLinear] {
        trainer.set_base_product(product).unwrap();
        // B = 0: the trainer's forward pass is the base model's. Within the tolerance of the
        // SmolLM2 reference test: 8-bit activation rounding turns any difference in the last
        // bits of an activation into up to a rounding step, so logits move by up to about 1.4.
        for (position, (logits, reference)) in trainer
            .logits(&ids)
            .unwrap()
            .iter()
            .zip(&served)
            .enumerate()
        {
            let diff = crate::max_abs_diff(logits, reference);
            assert!(diff < 2.0, "{product:?} position {position}: {diff}");
            assert!(
                top1_agrees(logits, reference, 1.0),
                "{product:?} position {position}"
            );
        }
        let (loss, gradients) = trainer.loss_and_gradients(&examples).unwrap();
        assert!(
            gradients.iter().all(|g| g.b.iter().any(|&v| v != 0.0)),
            "every B has a gradient"
        );
        losses.push(loss);
    }
    assert!(
        (losses[0] - losses[1]).abs() < 0.05 * losses[1],
        "losses {losses:?}"
    );
}
