//! Training throughput on the real SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to f32 for
//! training): rank-8 LoRA on q, k, v, o, sequences of 256 tokens (all of them response, so the
//! head runs on every position), batch 1: base dequantized to f32 with provdb's frozen-linear
//! op, the same with candle's matmul, and the base kept as stored (Q4_1) and multiplied by
//! provdb's inference kernels. The first step of each run is a warm-up and is not counted.
//!
//! ```text
//! cargo build --workspace --examples
//! $CARGO_TARGET_DIR/debug/examples/train_speed [MODEL] [STEPS] [frozen|matmul|stored|all]
//! ```
//!
//! Measured on the 2-core development machine (AMD EPYC, AVX-512), idle, 5 steps, mean of
//! steps 2-5, `CANDLE_NUM_THREADS=1`: frozen-linear 198 tokens/s (1.29 s per step), matmul 137
//! (1.87 s; the same factors bit for bit), as stored 111 (2.30 s) with no f32 copy of the base.
//! (Before the fused ops and the gemm build without debug assertions: 88, 62 and 63-72.)
//! `provdb bench train` times the same step against PyTorch + PEFT.
//!
//! candle's CPU element-wise ops run on its own spinning thread pool beside rayon's (gemm):
//! `CANDLE_NUM_THREADS=1` keeps those ops on the calling thread, which is faster even on an idle
//! machine (213 against 160 tokens/s in `provdb bench train`): the spinning worker competes
//! with gemm's two threads for the two cores.
#![allow(clippy::unwrap_used, reason = "a measurement script fails loudly")]

use std::sync::Arc;
use std::time::Instant;

use provdb_inference::llama::LlamaModel;
use provdb_inference::model_files;
use provdb_inference::train::{BaseProduct, Control, Example, Schedule, Trainer, TrainingConfig};

const LENGTH: usize = 256;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map(Into::into)
        .unwrap_or_else(model_files::default_generator_path);
    let steps: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(6);
    let products = match args.next().as_deref() {
        Some("frozen") => vec![BaseProduct::FrozenLinear],
        Some("matmul") => vec![BaseProduct::Matmul],
        Some("stored") => vec![BaseProduct::AsStored],
        _ => vec![
            BaseProduct::FrozenLinear,
            BaseProduct::Matmul,
            BaseProduct::AsStored,
        ],
    };
    let model = LlamaModel::load(&path).unwrap();
    let text = "Provenance matters: every record in a Datanet names its contributor, its \
                license and its history, and every answer cites the records it used. "
        .repeat(40);
    let tokens = model.encode(&text).unwrap();
    let examples: Vec<Example> = (0..steps)
        .map(|i| Example::new(Vec::new(), tokens[i..i + LENGTH].to_vec()))
        .collect();
    let config = TrainingConfig {
        rank: 8,
        alpha: 16.0,
        targets: ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(String::from)
            .to_vec(),
        learning_rate: 1e-4,
        warmup_steps: 0,
        schedule: Schedule::Constant,
        epochs: 1,
        batch_size: 1,
        max_length: LENGTH,
        held_out_fraction: 0.0,
        ..TrainingConfig::default()
    };
    println!(
        "{} | rank 8 on q,k,v,o | {LENGTH} tokens x batch 1 | {} rayon threads",
        path.display(),
        rayon::current_num_threads()
    );
    for product in products {
        let started = Instant::now();
        let examples = examples.clone();
        let mut trainer =
            Trainer::with_base_product(Arc::clone(&model), config.clone(), examples, product)
                .unwrap();
        let setup = started.elapsed().as_secs_f64();
        let mut step_started = Instant::now();
        let mut timed = Vec::new();
        trainer
            .run(None, &mut |p| {
                let seconds = step_started.elapsed().as_secs_f64();
                if p.step > 1 {
                    timed.push(seconds);
                }
                println!(
                    "  {product:?} step {}/{}: loss {:.4}, {seconds:.2} s",
                    p.step, p.total_steps, p.loss
                );
                step_started = Instant::now();
                Control::Continue
            })
            .unwrap();
        // FNV-1a over the trained factors' bits: equal across runs (and thread counts) when the
        // arithmetic is deterministic.
        let fingerprint = trainer
            .factors()
            .unwrap()
            .iter()
            .flat_map(|f| f.a.iter().chain(&f.b))
            .fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
                (h ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3)
            });
        println!("  {product:?} factors fnv1a {fingerprint:016x}");
        let mean = timed.iter().sum::<f64>() / timed.len().max(1) as f64;
        let fastest = timed.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{product:?}: {:.0} tokens/s at the mean step ({mean:.2} s), {:.0} at the fastest \
             ({fastest:.2} s); setup {setup:.1} s",
            LENGTH as f64 / mean,
            LENGTH as f64 / fastest
        );
    }
}
