//! `provdb bench adapters`: multi-LoRA serving on the SmolLM2 GGUF, in one run:
//! - decode tokens/s of 8 sequences in one batch, each on its own rank-16 adapter on every
//!   linear layer, against the same 8 sequences on the base alone (`mixed_vs_base_ratio`);
//! - cold load of one such adapter from the store to ready (`cold_load_ms_p50`; the files are
//!   in the page cache, as just written);
//! - 1,000 adapters in the store requested round-robin through a 64-adapter cache by 8
//!   concurrent clients of the batching generator: throughput, p50/p99 latency, resident
//!   memory against base + budget + the process's overhead before the phase;
//! - the same workloads through llama.cpp (`scripts/bench-llamacpp-adapters.sh`), which swaps
//!   adapters between requests, as the anchor.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use provdb::inference::llama::{
    GenerationRequest, Generator, GeneratorOptions, LlamaModel, SamplingParams, Sequence,
};
use provdb::inference::lora::random::{self, RandomAdapter};
use provdb::inference::lora::{AdapterCache, AdapterId, AdapterMix, AdapterStore};
use provdb::inference::model_files;
use serde::Serialize;
use serde_json::Value;

use crate::generate::{DECODE_TOKENS, decode};
use crate::output::{UserError, print_json};
use crate::process::rss_mb;

/// The options of `provdb-bench adapters`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Threads (provdb's pool and llama.cpp's).
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// New tokens per request in llama.cpp's mixed run.
    #[arg(long, default_value_t = 32)]
    pub(crate) tokens: usize,
    /// Adapters in the store for the round-robin run (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub(crate) adapters_on_disk: usize,
    /// Rank of the round-robin adapters (on q_proj and v_proj, PEFT's default targets).
    #[arg(long, default_value_t = 16)]
    pub(crate) rr_rank: usize,
    /// Adapters the round-robin cache holds.
    #[arg(long, default_value_t = 64)]
    pub(crate) cache_adapters: usize,
    /// Round-robin requests.
    #[arg(long, default_value_t = 400)]
    pub(crate) requests: usize,
    /// New tokens per round-robin request.
    #[arg(long, default_value_t = 8)]
    pub(crate) rr_tokens: usize,
    /// Concurrent round-robin clients.
    #[arg(long, default_value_t = 8)]
    pub(crate) clients: usize,
    /// Where to write the adapters (default /tmp).
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// GGUF model file (default: $PROVDB_MODELS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf).
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// Do not measure llama.cpp.
    #[arg(long)]
    pub(crate) no_anchor: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

const BATCH: usize = 8;
const RANK: usize = 16;
const PROMPT_TOKENS: usize = 32;
const MIB: f64 = 1024.0 * 1024.0;
/// Resident bytes allowed for the allocator's per-thread arenas in the round robin.
const ALLOCATOR_ALLOWANCE: usize = 32 << 20;

#[derive(Serialize)]
struct RoundRobin {
    adapters_on_disk: usize,
    rank: usize,
    targets: Vec<&'static str>,
    cache_adapters: usize,
    cache_budget_mb: f64,
    clients: usize,
    requests: usize,
    new_tokens_per_request: usize,
    requests_per_s: f64,
    tokens_per_s: f64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    loads: u64,
    evictions: u64,
    rss_before_mb: f64,
    rss_peak_mb: f64,
    /// Memory besides the budget: per concurrent client, a load in flight (at most twice the
    /// adapter) and its sequence's KV cache; plus 32 MiB for the allocator's thread arenas.
    load_overhead_mb: f64,
    rss_bound_mb: f64,
}

#[derive(Serialize)]
struct Report {
    model: String,
    threads: usize,
    batch: usize,
    rank: usize,
    decode_steps: usize,
    base_tokens_per_s: f64,
    mixed_tokens_per_s: f64,
    mixed_vs_base_ratio: f64,
    target_mixed_vs_base_ratio: f64,
    adapter_memory_mb: f64,
    cold_load_ms_p50: f64,
    cold_load_ms_max: f64,
    target_cold_load_ms_p50: f64,
    round_robin: Option<RoundRobin>,
    llamacpp: Option<Value>,
    llamacpp_error: Option<String>,
    mixed_vs_llamacpp_mixed: Option<f64>,
    round_robin_vs_llamacpp: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// Writes `count` random adapters under `dir` and adds them to `store`; their ids.
fn make_adapters(
    store: &AdapterStore,
    model: &LlamaModel,
    dir: &Path,
    count: usize,
    spec: &RandomAdapter,
) -> anyhow::Result<Vec<AdapterId>> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let folder = dir.join(format!("adapter-{i:04}"));
        let spec = RandomAdapter {
            seed: spec.seed + i as u64,
            ..spec.clone()
        };
        random::write(&folder, model.config(), &spec)?;
        let info = store.add(&folder, None, model)?;
        ids.push(store.resolve(&info.id)?);
    }
    Ok(ids)
}

/// Milliseconds to load each adapter into a fresh cache (the store's files are warm).
fn cold_loads(
    store: &AdapterStore,
    model: &Arc<LlamaModel>,
    ids: &[AdapterId],
    reps: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut times = Vec::new();
    for _ in 0..reps.max(1) {
        for &id in ids {
            let cache = AdapterCache::new(store.clone(), Arc::clone(model), usize::MAX);
            let started = Instant::now();
            std::hint::black_box(cache.get(id)?);
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Round-robin requests over `ids` through a cache of `cache_adapters`, by `clients` threads.
fn round_robin(
    model: &Arc<LlamaModel>,
    store: &AdapterStore,
    ids: &[AdapterId],
    args: &Args,
    prompt: &[u32],
    targets: Vec<&'static str>,
) -> anyhow::Result<RoundRobin> {
    let bytes = store.info(ids[0])?.memory_bytes;
    let budget = bytes * args.cache_adapters;
    // Besides the budget: per client, a load in flight (the file's bytes and one layer's
    // factors being converted, at most twice the adapter) and its sequence's KV cache.
    let config = model.config();
    let kv_bytes = (prompt.len() + args.rr_tokens) * config.layers * 2 * config.kv_dim() * 4;
    // And the allocator's own: glibc gives each thread that allocates its own arena, whose
    // freed pages it keeps (measured here: under 20 MiB for 8 clients and the worker).
    let overhead = args.clients * (2 * bytes + kv_bytes) + ALLOCATOR_ALLOWANCE;
    let cache = Arc::new(AdapterCache::new(store.clone(), Arc::clone(model), budget));
    let generator = Arc::new(Generator::new(
        Arc::clone(model),
        GeneratorOptions {
            max_batch: BATCH,
            threads: Some(args.threads),
        },
    )?);
    let params = SamplingParams {
        max_tokens: args.rr_tokens,
        ..SamplingParams::default()
    };
    let rss_before = rss_mb();
    let next = Arc::new(Mutex::new(0usize));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.requests)));
    let peak = Arc::new(Mutex::new(rss_before));
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut clients = Vec::new();
        for _ in 0..args.clients {
            clients.push(scope.spawn(|| -> anyhow::Result<()> {
                loop {
                    let i = {
                        let mut next = next.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                        *next += 1;
                        *next - 1
                    };
                    if i >= args.requests {
                        return Ok(());
                    }
                    let begun = Instant::now();
                    let adapter = cache.get(ids[i % ids.len()])?;
                    let request = GenerationRequest {
                        prompt: prompt.to_vec(),
                        params,
                        adapters: AdapterMix::single(adapter),
                    };
                    generator.submit(request)?.finish()?;
                    let ms = begun.elapsed().as_secs_f64() * 1e3;
                    latencies
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .push(ms);
                    let mut peak = peak.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    *peak = peak.max(rss_mb());
                }
            }));
        }
        for client in clients {
            client
                .join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        }
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies =
        std::mem::take(&mut *latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    latencies.sort_by(f64::total_cmp);
    let stats = cache.stats();
    let peak = *peak.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    Ok(RoundRobin {
        adapters_on_disk: ids.len(),
        rank: args.rr_rank,
        targets,
        cache_adapters: args.cache_adapters,
        cache_budget_mb: budget as f64 / 1e6,
        clients: args.clients,
        requests: args.requests,
        new_tokens_per_request: args.rr_tokens,
        requests_per_s: args.requests as f64 / seconds,
        tokens_per_s: (args.requests * args.rr_tokens) as f64 / seconds,
        latency_ms_p50: percentile(&latencies, 0.5),
        latency_ms_p99: percentile(&latencies, 0.99),
        loads: stats.loads,
        evictions: stats.evictions,
        rss_before_mb: rss_before,
        rss_peak_mb: peak,
        load_overhead_mb: overhead as f64 / MIB,
        rss_bound_mb: rss_before + (budget + overhead) as f64 / MIB,
    })
}

/// llama.cpp on the same adapters (PEFT folders converted to GGUF LoRA by the script).
fn llamacpp(args: &Args, mixed_dir: &Path, rr_dir: Option<&Path>) -> Result<Value, String> {
    let mut command = Command::new("bash");
    command.args([
        "scripts/bench-llamacpp-adapters.sh".into(),
        "--adapters".into(),
        mixed_dir.display().to_string(),
        "--threads".into(),
        args.threads.to_string(),
        "--tokens".into(),
        args.tokens.to_string(),
        "--reps".into(),
        args.reps.to_string(),
    ]);
    if let Some(dir) = rr_dir {
        command.args([
            "--round-robin-dir".into(),
            dir.display().to_string(),
            "--requests".into(),
            args.requests.to_string(),
            "--cache".into(),
            args.cache_adapters.to_string(),
            "--rr-tokens".into(),
            args.rr_tokens.to_string(),
        ]);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run scripts/bench-llamacpp-adapters.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/bench-llamacpp-adapters.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bad anchor output: {e}"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.threads == 0 || args.clients == 0 || args.cache_adapters == 0 {
        return Err(
            UserError("--threads, --clients and --cache-adapters must be positive".into()).into(),
        );
    }
    let path = args
        .model
        .clone()
        .unwrap_or_else(model_files::default_generator_path);
    let model: Arc<LlamaModel> = LlamaModel::load(&path)?;
    model.content_hash()?; // once, before any timing
    let work = tempfile::tempdir_in(args.work_dir.as_deref().unwrap_or(Path::new("/tmp")))?;
    let store = AdapterStore::new(work.path().join("store"));
    let mut spec = RandomAdapter::all_linear(RANK, 1);
    spec.bf16 = true;
    let mixed_dir = work.path().join("mixed");
    let ids = make_adapters(&store, &model, &mixed_dir, BATCH, &spec)?;
    let text = "The boundary layer on a swept wing becomes turbulent ahead of the shock when ";
    let prompt = model.encode(&text.repeat(4))?;
    let prompt = &prompt[..PROMPT_TOKENS.min(prompt.len())];
    let rr_targets = vec!["q_proj", "v_proj"];
    let rr_dir = work.path().join("round-robin");
    let round_robin = if args.adapters_on_disk > 0 {
        eprintln!(
            "bench adapters: writing {} adapters for the round-robin run",
            args.adapters_on_disk
        );
        let rr_spec = RandomAdapter {
            targets: rr_targets.clone(),
            bf16: true,
            ..RandomAdapter::all_linear(args.rr_rank, 10_000)
        };
        let rr_ids = make_adapters(&store, &model, &rr_dir, args.adapters_on_disk, &rr_spec)?;
        Some(round_robin(
            &model, &store, &rr_ids, &args, prompt, rr_targets,
        )?)
    } else {
        None
    };
    let cold = cold_loads(&store, &model, &ids, args.reps)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()?;
    let prompts: Vec<&[u32]> = (0..BATCH).map(|i| &prompt[i..]).collect();
    let cache = AdapterCache::new(store.clone(), Arc::clone(&model), usize::MAX);
    let mixes: Vec<AdapterMix> = ids
        .iter()
        .map(|&id| Ok(AdapterMix::single(cache.get(id)?)))
        .collect::<anyhow::Result<_>>()?;
    let (base_s, mixed_s) = pool.install(|| -> anyhow::Result<(f64, f64)> {
        let mut base: Vec<Sequence> = (0..BATCH).map(|_| Sequence::new()).collect();
        let mut mixed: Vec<Sequence> = mixes
            .iter()
            .map(|m| Sequence::with_adapters(m.clone()))
            .collect();
        decode(&model, &mut base, &prompts)?; // warm-up
        // Alternate, so drifting load hits both alike.
        let (mut base_s, mut mixed_s) = (f64::MAX, f64::MAX);
        for _ in 0..args.reps.max(1) {
            base_s = base_s.min(decode(&model, &mut base, &prompts)?);
            mixed_s = mixed_s.min(decode(&model, &mut mixed, &prompts)?);
        }
        Ok((base_s, mixed_s))
    })?;
    let steps = DECODE_TOKENS;
    let base_tps = (steps * BATCH) as f64 / base_s;
    let mixed_tps = (steps * BATCH) as f64 / mixed_s;
    drop(mixes);
    drop(cache);
    let anchor = if args.no_anchor {
        Err("not measured (--no-anchor)".to_string())
    } else {
        llamacpp(
            &args,
            &mixed_dir,
            round_robin.as_ref().map(|_| rr_dir.as_path()),
        )
    };
    let (llamacpp, llamacpp_error) = match anchor {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    };
    let anchor_number = |key: &str| llamacpp.as_ref().and_then(|v| v[key].as_f64());
    let rr_anchor = llamacpp
        .as_ref()
        .and_then(|v| v["round_robin"]["tok_s"].as_f64());
    let report = Report {
        model: path.display().to_string(),
        threads: args.threads,
        batch: BATCH,
        rank: RANK,
        decode_steps: steps,
        base_tokens_per_s: base_tps,
        mixed_tokens_per_s: mixed_tps,
        mixed_vs_base_ratio: mixed_tps / base_tps,
        target_mixed_vs_base_ratio: 0.7,
        adapter_memory_mb: store.info(ids[0])?.memory_bytes as f64 / 1e6,
        cold_load_ms_p50: percentile(&cold, 0.5),
        cold_load_ms_max: cold.last().copied().unwrap_or(0.0),
        target_cold_load_ms_p50: 20.0,
        mixed_vs_llamacpp_mixed: anchor_number("mixed_tok_s").map(|t| mixed_tps / t),
        round_robin_vs_llamacpp: round_robin
            .as_ref()
            .zip(rr_anchor)
            .map(|(r, t)| r.tokens_per_s / t),
        round_robin,
        llamacpp,
        llamacpp_error,
    };
    if args.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

fn print_report(r: &Report) {
    println!(
        "model {} | {} threads | batch {} | rank {} on all linear layers",
        r.model, r.threads, r.batch, r.rank
    );
    println!(
        "decode: base {:.1} tok/s, 8 distinct adapters {:.1} tok/s: mixed_vs_base_ratio {:.3} (target >= {})",
        r.base_tokens_per_s,
        r.mixed_tokens_per_s,
        r.mixed_vs_base_ratio,
        r.target_mixed_vs_base_ratio
    );
    println!(
        "cold load of one adapter ({:.1} MB in memory): p50 {:.2} ms, max {:.2} ms (target p50 < {} ms)",
        r.adapter_memory_mb, r.cold_load_ms_p50, r.cold_load_ms_max, r.target_cold_load_ms_p50
    );
    if let Some(rr) = &r.round_robin {
        println!(
            "round robin: {} adapters (rank {} {}) through a {}-adapter cache ({:.0} MB), {} clients: {:.1} req/s, {:.1} tok/s, p50 {:.0} ms, p99 {:.0} ms, {} loads, {} evictions; RSS {:.0} MB before, peak {:.0} MB (bound: before + budget + {:.0} MB of loads in flight = {:.0} MB)",
            rr.adapters_on_disk,
            rr.rank,
            rr.targets.join("+"),
            rr.cache_adapters,
            rr.cache_budget_mb,
            rr.clients,
            rr.requests_per_s,
            rr.tokens_per_s,
            rr.latency_ms_p50,
            rr.latency_ms_p99,
            rr.loads,
            rr.evictions,
            rr.rss_before_mb,
            rr.rss_peak_mb,
            rr.load_overhead_mb,
            rr.rss_bound_mb
        );
    }
    match (&r.llamacpp, &r.llamacpp_error) {
        (Some(v), _) => println!("llama.cpp: {v}"),
        (None, Some(e)) => println!("llama.cpp: {e}"),
        _ => {}
    }
    if let Some(x) = r.mixed_vs_llamacpp_mixed {
        println!("mixed decode vs llama.cpp swapping adapters: {x:.2}x");
    }
    if let Some(x) = r.round_robin_vs_llamacpp {
        println!("round robin vs llama.cpp: {x:.2}x");
    }
}
