//! Microbenchmarks of the hot loops: the dot products, the matrix product, the LoRA apply, the
//! eight-lane keccak and the text scan, each run with every kernel variant this CPU has on the
//! same inputs, so each SIMD row reads against the portable row beside it (`args` names the
//! variant). Inputs have the shapes of SmolLM2-135M (hidden 576, feed-forward 1536) and of
//! ingested records (about 1.2 KB).
//!
//! `cargo bench --bench kernels` on an idle machine for figures; under `cargo test` divan runs
//! each benchmark once, as a check that they work.
#![allow(missing_docs, reason = "benchmark functions")]

use divan::{Bencher, black_box};
use provdb_kernels::Kernels;
use provdb_kernels::select::{Variant, available};
use provdb_kernels::{
    Activations, BlockQ4_1, BlockQ8_0, KECCAK_LANES, LowRank, LowRankSegment, Matrix, WeightFormat,
    apply_low_rank_with, matmul_with,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "../tests/inputs.rs"]
mod inputs;
use inputs::{random_q4_1_bytes, random_values};

fn main() {
    divan::main();
}

/// Model width (columns of the products).
const HIDDEN: usize = 576;
/// Feed-forward width (rows of the products).
const FEED_FORWARD: usize = 1536;

fn kernels(variant: Variant) -> &'static Kernels {
    Kernels::for_variant(variant).expect("divan passes only the variants this CPU runs")
}

/// Row kernels on 64 weight rows of [`HIDDEN`] values and four activation rows.
mod dot {
    use provdb_kernels::dot::RowsKernel;

    use super::*;

    const ROWS: usize = 64;
    const BATCH: usize = 4;
    const PER_ROW: usize = HIDDEN / 32;

    /// `kernel` over `weights` (`ROWS` rows) and `BATCH` random activation rows.
    fn rows<W>(bencher: Bencher, weights: &[W], kernel: RowsKernel<W>, rng: &mut StdRng) {
        let x = random_values(rng, BATCH * HIDDEN, 1.0);
        let activations = Activations::new(&x, HIDDEN);
        let mut out = vec![0f32; ROWS * BATCH];
        bencher.bench_local(|| {
            kernel(
                black_box(weights),
                PER_ROW,
                activations.quantized(),
                BATCH,
                &mut out,
            )
        });
    }

    #[divan::bench(args = available())]
    fn q4_1_rows(bencher: Bencher, variant: Variant) {
        let mut rng = StdRng::seed_from_u64(1);
        let weights = BlockQ4_1::parse(&random_q4_1_bytes(&mut rng, ROWS * PER_ROW));
        rows(bencher, &weights, kernels(variant).dot.q4_1, &mut rng);
    }

    #[divan::bench(args = available())]
    fn q8_0_rows(bencher: Bencher, variant: Variant) {
        let mut rng = StdRng::seed_from_u64(2);
        let values = random_values(&mut rng, ROWS * HIDDEN, 0.3);
        let weights: Vec<BlockQ8_0> = values.chunks_exact(32).map(BlockQ8_0::quantize).collect();
        rows(bencher, &weights, kernels(variant).dot.q8_0, &mut rng);
    }

    #[divan::bench(args = available())]
    fn f32(bencher: Bencher, variant: Variant) {
        let mut rng = StdRng::seed_from_u64(3);
        let (x, y) = (
            random_values(&mut rng, HIDDEN, 1.0),
            random_values(&mut rng, HIDDEN, 1.0),
        );
        let kernel = kernels(variant).dot.f32;
        bencher.bench_local(|| kernel(black_box(&x), black_box(&y)));
    }
}

/// The threaded product of a Q4_1 [`FEED_FORWARD`] × [`HIDDEN`] matrix with one row
/// (decoding) and with 16 rows (prefill), on the global rayon pool.
mod matmul {
    use super::*;

    fn run(bencher: Bencher, variant: Variant, batch: usize) {
        let mut rng = StdRng::seed_from_u64(4);
        let bytes = random_q4_1_bytes(&mut rng, FEED_FORWARD * HIDDEN / 32);
        let weights = Matrix::from_gguf_bytes(WeightFormat::Q4_1, FEED_FORWARD, HIDDEN, &bytes)
            .expect("the bytes of FEED_FORWARD x HIDDEN Q4_1 values");
        let x = random_values(&mut rng, batch * HIDDEN, 1.0);
        let activations = Activations::new(&x, HIDDEN);
        let kernels = kernels(variant);
        let mut out = vec![0f32; batch * FEED_FORWARD];
        bencher.bench_local(|| matmul_with(kernels, black_box(&weights), &activations, &mut out));
    }

    #[divan::bench(args = available())]
    fn q4_1_decode(bencher: Bencher, variant: Variant) {
        run(bencher, variant, 1);
    }

    #[divan::bench(args = available())]
    fn q4_1_prefill_16(bencher: Bencher, variant: Variant) {
        run(bencher, variant, 16);
    }
}

/// The LoRA apply of one rank-16 adapter to eight rows of a [`HIDDEN`] → [`FEED_FORWARD`]
/// layer, with f32 and with bf16 factors.
mod lora {
    use super::*;

    const RANK: usize = 16;
    const ROWS: usize = 8;

    fn run(bencher: Bencher, variant: Variant, factors: &LowRank, x: &[f32]) {
        let kernels = kernels(variant);
        let segment = [LowRankSegment {
            rows: 0..ROWS,
            factors,
            scale: 2.0,
        }];
        let mut out = vec![0f32; ROWS * FEED_FORWARD];
        bencher.bench_local(|| {
            apply_low_rank_with(
                kernels,
                black_box(x),
                HIDDEN,
                &mut out,
                FEED_FORWARD,
                &segment,
            )
        });
    }

    fn inputs(bf16: bool) -> (LowRank, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(5);
        let a = random_values(&mut rng, RANK * HIDDEN, 0.5);
        let b = random_values(&mut rng, RANK * FEED_FORWARD, 0.5);
        let bits = |v: &[f32]| v.iter().map(|x| (x.to_bits() >> 16) as u16).collect();
        let factors = if bf16 {
            LowRank::from_parts_bf16(RANK, HIDDEN, FEED_FORWARD, bits(&a), bits(&b))
        } else {
            LowRank::from_parts(RANK, HIDDEN, FEED_FORWARD, a, b)
        };
        let factors = factors.expect("factors of the declared shape");
        (factors, random_values(&mut rng, ROWS * HIDDEN, 1.0))
    }

    #[divan::bench(args = available())]
    fn apply_f32(bencher: Bencher, variant: Variant) {
        let (factors, x) = inputs(false);
        run(bencher, variant, &factors, &x);
    }

    #[divan::bench(args = available())]
    fn apply_bf16(bencher: Bencher, variant: Variant) {
        let (factors, x) = inputs(true);
        run(bencher, variant, &factors, &x);
    }
}

/// keccak256 of eight 1.2 KB messages: eight lanes at once where the variant has that kernel,
/// else one message at a time with XKCP's assembly (the portable path storage takes).
mod keccak {
    use keccak_asm::Keccak256;

    use super::*;

    /// The portable variant, and the variants with an eight-lane kernel.
    fn variants() -> Vec<Variant> {
        available()
            .iter()
            .copied()
            .filter(|&v| v == Variant::Portable || kernels(v).keccak.x8.is_some())
            .collect()
    }

    #[divan::bench(args = variants())]
    fn eight_messages(bencher: Bencher, variant: Variant) {
        let mut rng = StdRng::seed_from_u64(6);
        let data: Vec<u8> = (0..KECCAK_LANES * 1200).map(|_| rng.random()).collect();
        let messages: [&[u8]; KECCAK_LANES] =
            std::array::from_fn(|lane| &data[lane * 1200..(lane + 1) * 1200]);
        match kernels(variant).keccak.x8 {
            Some(x8) => bencher.bench_local(|| x8(black_box(messages))),
            None => bencher.bench_local(|| {
                black_box(messages).map(|m| -> [u8; 32] { Keccak256::digest(m).into() })
            }),
        }
    }
}

/// The text scan over a 1.2 KB ASCII record text, and the copying scan.
mod text {
    use super::*;

    fn record_text() -> Vec<u8> {
        let mut rng = StdRng::seed_from_u64(7);
        (0..1200)
            .map(|_| rng.random_range(b' '..b'~'))
            .filter(|&b| b != b'"' && b != b'\\')
            .collect()
    }

    #[divan::bench(args = available())]
    fn scan(bencher: Bencher, variant: Variant) {
        let text = record_text();
        let scan = kernels(variant).text.scan;
        bencher.bench_local(|| scan(black_box(&text)));
    }

    #[divan::bench(args = available())]
    fn copy_scan(bencher: Bencher, variant: Variant) {
        let text = record_text();
        let copy_scan = kernels(variant).text.copy_scan;
        let mut out = Vec::with_capacity(text.len());
        bencher.bench_local(|| {
            out.clear();
            copy_scan(black_box(&text), &mut out)
        });
    }
}
