//! LoRA training on the tiny random models the tests write (f32 weights): training lowers the
//! held-out loss, the same seed gives the same adapter bytes, the adapter written loads through
//! the store and serves the trainer's own logits (GGUF base and Hugging Face base, which checks
//! the q/k row order), and bad hyperparameters are user errors.

use std::path::Path;
use std::sync::Arc;

use provdb_inference::llama::{Llama, LlamaModel};
use provdb_inference::lora::{AdapterMix, AdapterStore, MODULES};
use provdb_inference::train::{
    Control, Example, Schedule, Trainer, TrainingConfig, TrainingOutcome,
};

/// The tiny GGUF LLaMA (hidden 16, 2 heads sharing 1 key/value head, context 64).
pub(crate) fn tiny_gguf(dir: &Path) -> Arc<LlamaModel> {
    let path = dir.join("tiny.gguf");
    crate::tiny_llama::write_gguf(&path, 16);
    LlamaModel::load(&path).unwrap()
}

/// The tiny Hugging Face LLaMA (hidden 32, 4 heads on 2 key/value heads, context 128).
pub(crate) fn tiny_hf(dir: &Path) -> Arc<LlamaModel> {
    let dir = dir.join("tiny-hf");
    std::fs::create_dir_all(&dir).unwrap();
    crate::tiny_safetensors::write_model(&dir, false);
    LlamaModel::load(&dir).unwrap()
}

/// Chats whose answer is always the same short text: learnable from any prompt.
pub(crate) fn chats(model: &LlamaModel, count: usize) -> Vec<Example> {
    (0..count)
        .map(|i| Example::chat(model, &format!("he {}", 17 * i % 89), "ok he").unwrap())
        .collect()
}

/// A short run on every linear layer.
pub(crate) fn quick_config() -> TrainingConfig {
    TrainingConfig {
        rank: 4,
        alpha: 8.0,
        targets: MODULES.map(String::from).to_vec(),
        learning_rate: 1e-2,
        warmup_steps: 2,
        schedule: Schedule::Cosine,
        epochs: 3,
        batch_size: 4,
        max_length: 64,
        held_out_fraction: 0.25,
        seed: 11,
        ..TrainingConfig::default()
    }
}

fn run_to_end(trainer: &mut Trainer) -> TrainingOutcome {
    trainer.run(None, &mut |_| Control::Continue).unwrap()
}

#[test]
fn training_lowers_the_held_out_loss() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_gguf(scratch.path());
    let config = TrainingConfig {
        learning_rate: 3e-2,
        epochs: 6,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(&model), config, chats(&model, 24)).unwrap();
    assert_eq!(trainer.example_counts(), (18, 6));
    assert_eq!(
        trainer.total_steps(),
        30,
        "5 batches (the last of 2) x 6 epochs"
    );
    let before = trainer.evaluate_held_out().unwrap().unwrap();
    let mut seen = Vec::new();
    let outcome = trainer
        .run(None, &mut |p| {
            assert!(p.loss.is_finite() && p.tokens_per_second > 0.0 && p.eta_seconds >= 0.0);
            seen.push((p.step, p.total_steps, p.learning_rate));
            Control::Continue
        })
        .unwrap();
    let TrainingOutcome::Finished { held_out, .. } = outcome else {
        panic!("not finished: {outcome:?}")
    };
    let after = held_out.unwrap();
    assert!(
        after.loss < 0.5 * before.loss,
        "held-out loss {} -> {}",
        before.loss,
        after.loss
    );
    assert!((after.perplexity - after.loss.exp()).abs() < 1e-3 * after.perplexity);
    assert_eq!(seen.len(), 30);
    assert_eq!(seen[0], (1, 30, 0.0), "warmup starts at 0");
    assert_eq!(seen[2].2, 3e-2, "peak after warmup");
    assert!(seen[29].2 < 1e-3, "cosine decay");
}

#[test]
fn the_same_seed_gives_the_same_adapter_bytes() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_gguf(scratch.path());
    let train = |seed: u64, name: &str| -> Vec<Vec<u8>> {
        let config = TrainingConfig {
            seed,
            epochs: 1,
            ..quick_config()
        };
        let mut trainer = Trainer::new(Arc::clone(&model), config, chats(&model, 12)).unwrap();
        run_to_end(&mut trainer);
        let dir = scratch.path().join(name);
        trainer.save_adapter(&dir, "tiny").unwrap();
        ["adapter_config.json", "adapter_model.safetensors"]
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .to_vec()
    };
    let first = train(5, "first");
    assert_eq!(first, train(5, "second"), "same seed, same bytes");
    assert_ne!(
        first[1],
        train(6, "other")[1],
        "another seed, other factors"
    );
}

/// Trains a few steps at a high rate, writes the adapter, serves it through the store and
/// compares every position's logits with the trainer's forward pass.
fn served_logits_match(model: Arc<LlamaModel>, scratch: &Path) {
    let config = TrainingConfig {
        learning_rate: 5e-2,
        epochs: 1,
        use_rslora: true,
        ..quick_config()
    };
    let mut trainer = Trainer::new(Arc::clone(&model), config, chats(&model, 16)).unwrap();
    run_to_end(&mut trainer);
    let q_b = &trainer.factors().unwrap()[0].b;
    assert!(q_b.iter().any(|&v| v != 0.0), "q_proj's B has moved");
    let folder = scratch.join("trained");
    trainer.save_adapter(&folder, "tiny").unwrap();
    let store = AdapterStore::new(scratch.join("store"));
    let info = store.add(&folder, None, &model).unwrap();
    assert_eq!(info.targets.len(), 7);
    let adapter = Arc::new(
        store
            .load(store.resolve(&info.id).unwrap(), &model)
            .unwrap(),
    );
    let ids = model.encode(&model.chat_prompt("he 42")).unwrap();
    let mut session = Llama::new(Arc::clone(&model));
    let base = session.score(&ids).unwrap();
    session.set_adapters(AdapterMix::single(adapter));
    let served = session.score(&ids).unwrap();
    let trained = trainer.logits(&ids).unwrap();
    let mut max_diff = 0f32;
    let mut adapter_effect = 0f32;
    for ((s, t), b) in served.iter().zip(&trained).zip(&base) {
        max_diff = max_diff.max(crate::max_abs_diff(s, t));
        adapter_effect = adapter_effect.max(crate::max_abs_diff(s, b));
    }
    assert!(
        max_diff < 1e-4,
        "served and trained logits differ by {max_diff}"
    );
    assert!(
        adapter_effect > 0.5,
        "the adapter changes the logits ({adapter_effect})"
    );
    // Generation runs on the served adapter with the inference code.
    let answer = session.greedy(&ids, 4).unwrap();
    assert!(!answer.is_empty());
}

#[test]
fn a_trained_adapter_serves_the_trainers_logits_on_a_gguf_base() {
    let scratch = tempfile::tempdir().unwrap();
    served_logits_match(tiny_gguf(scratch.path()), scratch.path());
}

#[test]
fn a_trained_adapter_serves_the_trainers_logits_on_a_safetensors_base() {
    let scratch = tempfile::tempdir().unwrap();
    served_logits_match(tiny_hf(scratch.path()), scratch.path());
}

#[test]
fn bad_hyperparameters_and_data_are_user_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_gguf(scratch.path());
    let examples = chats(&model, 8);
    let refused = |config: TrainingConfig, examples: Vec<Example>, expected: &str| {
        let error = Trainer::new(Arc::clone(&model), config, examples)
            .err()
            .unwrap();
        assert!(error.is_user_error(), "{error}");
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    };
    let with = |change: &dyn Fn(&mut TrainingConfig)| {
        let mut config = quick_config();
        change(&mut config);
        config
    };
    refused(with(&|c| c.rank = 0), examples.clone(), "rank 0");
    refused(
        with(&|c| c.targets = vec!["lm_head".into()]),
        examples.clone(),
        "lm_head",
    );
    refused(with(&|c| c.targets.clear()), examples.clone(), "no target");
    refused(
        with(&|c| c.learning_rate = 0.0),
        examples.clone(),
        "learning rate",
    );
    refused(
        with(&|c| c.learning_rate = -1e-3),
        examples.clone(),
        "learning rate",
    );
    refused(
        with(&|c| c.learning_rate = f64::NAN),
        examples.clone(),
        "learning rate",
    );
    refused(with(&|c| c.batch_size = 0), examples.clone(), "batch size");
    refused(
        with(&|c| c.max_length = 65),
        examples.clone(),
        "context of 64",
    );
    refused(
        with(&|c| c.held_out_fraction = 1.0),
        examples.clone(),
        "held-out",
    );
    refused(with(&|c| c.clip_norm = Some(0.0)), examples.clone(), "clip");
    refused(quick_config(), Vec::new(), "empty");
    let long = Example::new(vec![1; 40], vec![2; 30]);
    refused(quick_config(), vec![long], "context of 64");
    let over_max = Example::new(vec![1; 20], vec![2; 20]);
    refused(
        with(&|c| c.max_length = 32),
        vec![over_max],
        "max length 32",
    );
    refused(
        quick_config(),
        vec![Example::new(vec![1], vec![])],
        "no response",
    );
    refused(
        quick_config(),
        vec![Example::new(vec![1], vec![9999])],
        "vocabulary",
    );
    refused(
        with(&|c| c.held_out_fraction = 0.5),
        examples[..1].to_vec(),
        "none to train",
    );
    // Factors that overflow the forward pass stop the run with a user error before an update.
    let mut trainer = Trainer::new(Arc::clone(&model), quick_config(), examples.clone()).unwrap();
    let q = trainer.factors().unwrap().remove(0);
    let nan = vec![f32::NAN; q.b.len()];
    let error = trainer.set_factor(0, "q_proj", &q.a, &nan).unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("finite"),
        "{error}"
    );
    let (huge_a, huge_b) = (vec![1e30; q.a.len()], vec![1e30; q.b.len()]);
    trainer.set_factor(0, "q_proj", &huge_a, &huge_b).unwrap();
    let error = trainer.run(None, &mut |_| Control::Continue).unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("diverged"),
        "{error}"
    );
    assert_eq!(trainer.step(), 0, "no update after a non-finite loss");
}
