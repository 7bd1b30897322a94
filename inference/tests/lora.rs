//! LoRA adapters on the tiny safetensors LLaMA (f32 weights, so a merge is exact arithmetic):
//! unmerged equals merged within 1e-4; eight adapters in one batch equal each alone bit for
//! bit; bad adapters are refused whole; the store is content-addressed; the cache stays
//! within its byte budget while requests run and evict.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use provdb_inference::llama::{
    GenerationRequest, Generator, GeneratorOptions, Llama, LlamaModel, LogitsWanted,
    SamplingParams, Sequence, StepInput,
};
use provdb_inference::lora::random::{self, RandomAdapter};
use provdb_inference::lora::{AdapterCache, AdapterMix, AdapterStore, LoraAdapter, adapter_id};

use crate::tiny_safetensors::write_model;

const TOLERANCE: f32 = 1e-4;
const OTHER_OWNER: &str = "0x2222222222222222222222222222222222222222";

fn tiny_model(dir: &Path) -> Arc<LlamaModel> {
    std::fs::create_dir_all(dir).unwrap();
    write_model(dir, false);
    LlamaModel::load(dir).unwrap()
}

/// Writes adapter `seed` (rank 4 on every linear layer) and loads it through a store.
fn adapter(
    store: &AdapterStore,
    model: &LlamaModel,
    scratch: &Path,
    seed: u64,
) -> Arc<LoraAdapter> {
    let mut spec = RandomAdapter::all_linear(4, seed);
    spec.magnitude = 0.2;
    spec.use_rslora = seed % 2 == 1;
    spec.bf16 = seed.is_multiple_of(3); // kept as bf16 in memory
    let dir = scratch.join(format!("adapter-{seed}"));
    random::write(&dir, model.config(), &spec).unwrap();
    let info = store.add(&dir, None, model).unwrap();
    let id = store.resolve(&info.id).unwrap();
    Arc::new(store.load(id, model).unwrap())
}

/// A copy of the model folder `base` with `Σ w · s · B·A` added to every targeted weight.
fn merged_copy(base: &Path, out: &Path, adapters: &[(&Path, f32)]) {
    std::fs::create_dir_all(out).unwrap();
    for name in ["config.json", "tokenizer.json"] {
        std::fs::copy(base.join(name), out.join(name)).unwrap();
    }
    let device = Device::Cpu;
    let mut weights: HashMap<String, Tensor> =
        candle_core::safetensors::load(base.join("model.safetensors"), &device).unwrap();
    for (dir, weight) in adapters {
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        let (r, alpha) = (
            config["r"].as_f64().unwrap(),
            config["lora_alpha"].as_f64().unwrap(),
        );
        let scale = if config["use_rslora"].as_bool().unwrap() {
            alpha / r.sqrt()
        } else {
            alpha / r
        };
        let factors =
            candle_core::safetensors::load(dir.join("adapter_model.safetensors"), &device).unwrap();
        for (name, a) in &factors {
            let Some(module) = name.strip_suffix(".lora_A.weight") else {
                continue;
            };
            let b = &factors[&format!("{module}.lora_B.weight")];
            let f32 = |t: &Tensor| t.to_dtype(candle_core::DType::F32).unwrap();
            let (a, b) = (f32(a), f32(b));
            let key = format!(
                "{}.weight",
                module.strip_prefix("base_model.model.").unwrap()
            );
            let delta = (b.matmul(&a).unwrap() * (scale * f64::from(*weight))).unwrap();
            let merged = (&weights[&key] + delta).unwrap();
            weights.insert(key, merged);
        }
    }
    candle_core::safetensors::save(&weights, out.join("model.safetensors")).unwrap();
}

#[test]
fn unmerged_adapters_give_the_logits_of_merged_f32_weights() {
    let scratch = tempfile::tempdir().unwrap();
    let base_dir = scratch.path().join("base");
    let model = tiny_model(&base_dir);
    let store = AdapterStore::new(scratch.path().join("store"));
    let first = adapter(&store, &model, scratch.path(), 1);
    let second = adapter(&store, &model, scratch.path(), 2);
    let third = adapter(&store, &model, scratch.path(), 3); // bf16, rsLoRA
    let ids = model.encode("<|im_start|>hehe 42 he").unwrap();
    let base_logits = Llama::new(Arc::clone(&model)).prefill(&ids).unwrap();
    let cases = [
        (AdapterMix::single(Arc::clone(&first)), vec![(1u64, 1.0f32)]),
        (AdapterMix::single(Arc::clone(&third)), vec![(3, 1.0)]),
        (
            AdapterMix::weighted(vec![(Arc::clone(&first), 0.7), (Arc::clone(&second), -0.3)])
                .unwrap(),
            vec![(1, 0.7), (2, -0.3)],
        ),
    ];
    for (case, (mix, parts)) in cases.into_iter().enumerate() {
        let dirs: Vec<(std::path::PathBuf, f32)> = parts
            .iter()
            .map(|(seed, w)| (scratch.path().join(format!("adapter-{seed}")), *w))
            .collect();
        let borrowed: Vec<(&Path, f32)> = dirs.iter().map(|(d, w)| (d.as_path(), *w)).collect();
        let merged_dir = scratch.path().join(format!("merged-{case}"));
        merged_copy(&base_dir, &merged_dir, &borrowed);
        let merged = Llama::load(&merged_dir).unwrap().prefill(&ids).unwrap();
        let mut session = Llama::new(Arc::clone(&model));
        session.set_adapters(mix);
        let unmerged = session.prefill(&ids).unwrap();
        let diff = crate::max_abs_diff(&unmerged, &merged);
        assert!(
            diff < TOLERANCE,
            "case {case}: unmerged and merged differ by {diff}"
        );
        assert!(
            crate::max_abs_diff(&unmerged, &base_logits) > 100.0 * TOLERANCE,
            "case {case}: the adapter changes the logits"
        );
    }
}

#[test]
fn eight_adapters_in_one_batch_give_each_sequence_what_it_gets_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_model(&scratch.path().join("base"));
    let store = AdapterStore::new(scratch.path().join("store"));
    let mut mixes: Vec<AdapterMix> = (10..18)
        .map(|seed| AdapterMix::single(adapter(&store, &model, scratch.path(), seed)))
        .collect();
    mixes.push(AdapterMix::base());
    let prompts: Vec<Vec<u32>> = (0..mixes.len())
        .map(|i| model.encode(&"he 42 x ".repeat(1 + i % 3)).unwrap())
        .collect();
    let run = |mixes: &[AdapterMix], prompts: &[Vec<u32>]| -> Vec<Vec<Vec<f32>>> {
        let mut sequences: Vec<Sequence> = mixes
            .iter()
            .map(|m| Sequence::with_adapters(m.clone()))
            .collect();
        let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); mixes.len()];
        // A ragged prefill step, then two decode steps.
        for step in 0..3 {
            let tokens: Vec<Vec<u32>> = prompts
                .iter()
                .map(|p| {
                    if step == 0 {
                        p.clone()
                    } else {
                        vec![p[step % p.len()]]
                    }
                })
                .collect();
            let mut inputs: Vec<StepInput<'_>> = sequences
                .iter_mut()
                .zip(&tokens)
                .map(|(sequence, tokens)| StepInput {
                    sequence,
                    tokens,
                    logits: LogitsWanted::Last,
                })
                .collect();
            for (o, logits) in out.iter_mut().zip(model.forward(&mut inputs).unwrap()) {
                o.extend(logits);
            }
        }
        out
    };
    let batched = run(&mixes, &prompts);
    for i in 0..mixes.len() {
        let alone = run(&mixes[i..=i], &prompts[i..=i]);
        assert_eq!(
            alone[0], batched[i],
            "sequence {i}: batched differs from alone"
        );
    }
    assert_ne!(
        batched[0], batched[1],
        "different adapters, different logits"
    );
}

#[test]
fn bad_adapters_are_refused_whole_and_leave_the_store_unchanged() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_model(&scratch.path().join("base"));
    let store = AdapterStore::new(scratch.path().join("store"));
    let good = scratch.path().join("good");
    random::write(&good, model.config(), &RandomAdapter::all_linear(4, 3)).unwrap();
    let config_text = std::fs::read_to_string(good.join("adapter_config.json")).unwrap();
    let weights = std::fs::read(good.join("adapter_model.safetensors")).unwrap();
    let refused = |name: &str, config: String, weights: &[u8], expected: &str| {
        let dir = scratch.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("adapter_config.json"), config).unwrap();
        std::fs::write(dir.join("adapter_model.safetensors"), weights).unwrap();
        let error = store.add(&dir, None, &model).unwrap_err().to_string();
        assert!(error.contains(expected), "{name}: {error}");
    };
    let with = |field: &str, value: &str| {
        config_text.replacen("{", &format!("{{\n  \"{field}\": {value},"), 1)
    };
    refused(
        "dora",
        with("use_dora", "true").replace("\"use_dora\": false,", ""),
        &weights,
        "DoRA",
    );
    refused(
        "saved",
        with("modules_to_save", "[\"lm_head\"]").replace("\"modules_to_save\": null,", ""),
        &weights,
        "modules_to_save",
    );
    refused(
        "head",
        config_text.replace("\"q_proj\"", "\"lm_head\""),
        &weights,
        "lm_head",
    );
    refused(
        "truncated",
        config_text.clone(),
        &weights[..weights.len() / 2],
        "safetensors",
    );
    refused("not json", "{r: 4".into(), &weights, "adapter_config.json");
    // An adapter for a base with another hidden width: shapes do not fit.
    let other = scratch.path().join("other-base");
    let mut other_config = model.config().clone();
    other_config.hidden = 16;
    random::write(&other, &other_config, &RandomAdapter::all_linear(4, 4)).unwrap();
    let error = store.add(&other, None, &model).unwrap_err().to_string();
    assert!(error.contains("another base model"), "{error}");
    // A tensor that is not a block's factor.
    let mut tensors =
        candle_core::safetensors::load(good.join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    tensors.insert(
        "base_model.model.lm_head.lora_A.weight".into(),
        Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let extra = scratch.path().join("extra.safetensors");
    candle_core::safetensors::save(&tensors, &extra).unwrap();
    refused(
        "extra tensor",
        config_text.clone(),
        &std::fs::read(&extra).unwrap(),
        "lm_head.lora_A",
    );
    let error = store
        .add(&good, Some("0x12"), &model)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not an address"), "{error}");
    assert!(store.list().unwrap().is_empty(), "nothing half-added");
    let leftovers: Vec<_> = std::fs::read_dir(store.root()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no staging folders left: {leftovers:?}"
    );
    assert!(
        store.add(&good, None, &model).is_ok(),
        "the good adapter still adds"
    );
}

#[test]
fn the_store_is_content_addressed_and_checks_the_base_model() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_model(&scratch.path().join("base"));
    let store = AdapterStore::new(scratch.path().join("store"));
    let source = scratch.path().join("folder-of-adapters");
    for seed in 0..3 {
        random::write(
            &source.join(format!("a{seed}")),
            model.config(),
            &RandomAdapter::all_linear(2, seed),
        )
        .unwrap();
    }
    let owner = "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01";
    let added = store.add_all(&source, Some(owner), &model).unwrap();
    assert_eq!(added.len(), 3);
    let first = &added[0];
    let expected = adapter_id(
        &std::fs::read(source.join("a0/adapter_config.json")).unwrap(),
        &std::fs::read(source.join("a0/adapter_model.safetensors")).unwrap(),
    );
    assert_eq!(
        first.id,
        expected.to_string(),
        "the id is the hash of the files"
    );
    assert_eq!(
        first.owner.as_deref(),
        Some(owner.to_ascii_lowercase().as_str())
    );
    assert_eq!(
        first.base_model,
        format!("0x{}", hex::encode(model.content_hash().unwrap()))
    );
    assert_eq!((first.rank, first.targets.len()), (2, 7));
    assert_eq!(
        store.add(&source.join("a0"), None, &model).unwrap(),
        *first,
        "adding again is a no-op"
    );
    let error = store
        .add(&source.join("a0"), Some(OTHER_OWNER), &model)
        .unwrap_err();
    assert!(
        error.to_string().contains("already stored with owner"),
        "{error}"
    );
    assert_eq!(store.list().unwrap().len(), 3);
    let id = store.resolve(&first.id[..10]).unwrap();
    assert_eq!(id, expected);
    assert!(store.resolve("0x12").is_err(), "too short a prefix");
    // Another base model (different weights, same shapes): refused at load.
    let other = tiny_model(&scratch.path().join("other-base"));
    let error = store.load(id, &other).unwrap_err().to_string();
    assert!(error.contains("was made for base model"), "{error}");
    let held = Arc::new(store.load(id, &model).unwrap());
    store.remove(id).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
    assert!(store.load(id, &model).is_err(), "removed");
    assert_eq!(held.id(), id, "a loaded copy outlives its removal");
}

#[test]
fn the_cache_stays_within_its_budget_while_requests_run_and_evict() {
    let scratch = tempfile::tempdir().unwrap();
    let model = tiny_model(&scratch.path().join("base"));
    let store = AdapterStore::new(scratch.path().join("store"));
    let ids: Vec<_> = (0..6)
        .map(|seed| {
            let dir = scratch.path().join(format!("a{seed}"));
            random::write(
                &dir,
                model.config(),
                &RandomAdapter::all_linear(4, 100 + seed),
            )
            .unwrap();
            store
                .resolve(&store.add(&dir, None, &model).unwrap().id)
                .unwrap()
        })
        .collect();
    let bytes = store.info(ids[0]).unwrap().memory_bytes;
    let budget = bytes * 5 / 2; // two adapters fit, not three
    let cache = Arc::new(AdapterCache::new(store.clone(), Arc::clone(&model), budget));
    let prompt = model.encode("he 42 he").unwrap();
    let params = SamplingParams {
        max_tokens: 12,
        ..SamplingParams::default()
    };
    // What each adapter generates alone.
    let solo: Vec<Vec<u32>> = ids
        .iter()
        .map(|&id| {
            let mut session = Llama::new(Arc::clone(&model));
            session.set_adapters(AdapterMix::single(Arc::new(
                store.load(id, &model).unwrap(),
            )));
            session.generate(&prompt, params, &mut |_| true).unwrap()
        })
        .collect();
    let generator = Arc::new(
        Generator::new(
            Arc::clone(&model),
            GeneratorOptions {
                max_batch: 4,
                threads: Some(2),
            },
        )
        .unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (cache, done, peak) = (Arc::clone(&cache), Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(cache.stats().resident_bytes, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let clients: Vec<_> = (0..3)
        .map(|client| {
            let (cache, generator, ids, prompt, params) = (
                Arc::clone(&cache),
                Arc::clone(&generator),
                ids.clone(),
                prompt.clone(),
                params,
            );
            std::thread::spawn(move || {
                (0..8)
                    .map(|i| {
                        let which = (client * 8 + i) % ids.len();
                        let adapter = cache.get(ids[which]).unwrap();
                        let request = GenerationRequest {
                            prompt: prompt.clone(),
                            params,
                            adapters: AdapterMix::single(adapter),
                        };
                        let (tokens, _) = generator.submit(request).unwrap().finish().unwrap();
                        (which, tokens)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        for (which, tokens) in client.join().unwrap() {
            assert_eq!(tokens, solo[which], "adapter {which} under eviction");
        }
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    let stats = cache.stats();
    assert!(
        peak.load(Ordering::Relaxed) <= budget,
        "peak {} > budget {budget}",
        peak.load(Ordering::Relaxed)
    );
    assert!(stats.evictions > 0 && stats.loads > 2, "{stats:?}");
    assert!(stats.resident_bytes <= budget);
    let too_small = AdapterCache::new(store, model, bytes - 1);
    let error = too_small.get(ids[0]).unwrap_err().to_string();
    assert!(
        error.contains("more than the adapter cache's budget"),
        "{error}"
    );
}
