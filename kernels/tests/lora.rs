//! The segmented LoRA apply equals the dense arithmetic `y + s·(B·A)·x`, applies composed
//! segments in order, leaves rows outside every segment untouched, and gives a row the same
//! bits alone or in any batch, serial or parallel, and with every variant's kernels.

use provdb_kernels::{Kernels, LowRank, LowRankSegment, apply_low_rank, apply_low_rank_with};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{fast_variants, random_values, reference_kernels};

fn factors(rng: &mut StdRng, rank: usize, input: usize, output: usize) -> LowRank {
    let a = random_values(rng, rank * input, 0.5);
    let b = random_values(rng, output * rank, 0.5);
    LowRank::from_peft(rank, input, output, a, &b).unwrap()
}

#[test]
fn equals_dense_product_and_skips_other_rows() {
    let mut rng = StdRng::seed_from_u64(7);
    let (input, output, rows) = (64, 48, 5);
    let first = factors(&mut rng, 4, input, output);
    let second = factors(&mut rng, 8, input, output);
    let x = random_values(&mut rng, rows * input, 1.0);
    let base = random_values(&mut rng, rows * output, 1.0);
    let mut out = base.clone();
    let segments = [
        LowRankSegment {
            rows: 1..3,
            factors: &first,
            scale: 0.5,
        },
        LowRankSegment {
            rows: 2..4,
            factors: &second,
            scale: -2.0,
        },
    ];
    apply_low_rank(&x, input, &mut out, output, &segments);
    let dense = [first.dense(), second.dense()];
    for r in 0..rows {
        for o in 0..output {
            let mut expected = f64::from(base[r * output + o]);
            for (segment, d) in segments.iter().zip(&dense) {
                if segment.rows.contains(&r) {
                    let sum: f64 = (0..input)
                        .map(|i| f64::from(d[o * input + i]) * f64::from(x[r * input + i]))
                        .sum();
                    expected += f64::from(segment.scale) * sum;
                }
            }
            let got = f64::from(out[r * output + o]);
            assert!(
                (got - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                "{r},{o}: {got} vs {expected}"
            );
        }
    }
    assert_eq!(out[..output], base[..output], "row 0 is in no segment");
    assert_eq!(
        out[4 * output..],
        base[4 * output..],
        "row 4 is in no segment"
    );
}

#[test]
fn a_row_gets_the_same_bits_alone_or_batched() {
    let mut rng = StdRng::seed_from_u64(11);
    let (input, output, rows) = (576, 1536, 8);
    let adapters: Vec<LowRank> = (0..rows)
        .map(|_| factors(&mut rng, 16, input, output))
        .collect();
    let x = random_values(&mut rng, rows * input, 1.0);
    let mut batched = vec![0.25f32; rows * output];
    let segments: Vec<LowRankSegment<'_>> = adapters
        .iter()
        .enumerate()
        .map(|(r, f)| LowRankSegment {
            rows: r..r + 1,
            factors: f,
            scale: 2.0,
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| apply_low_rank(&x, input, &mut batched, output, &segments));
    for (r, f) in adapters.iter().enumerate() {
        let mut alone = vec![0.25f32; output];
        let segment = [LowRankSegment {
            rows: 0..1,
            factors: f,
            scale: 2.0,
        }];
        apply_low_rank(
            &x[r * input..(r + 1) * input],
            input,
            &mut alone,
            output,
            &segment,
        );
        assert_eq!(alone, batched[r * output..(r + 1) * output], "row {r}");
    }
}

#[test]
fn wrong_factor_lengths_are_refused() {
    let error = LowRank::from_peft(4, 8, 8, vec![0.0; 31], &[0.0; 32]).unwrap_err();
    assert!(error.to_string().contains("need A of 32"), "{error}");
    assert!(LowRank::from_peft(0, 8, 8, Vec::new(), &[]).is_err());
}

#[test]
fn bf16_factors_equal_their_f32_widening_and_are_batch_independent() {
    let mut rng = StdRng::seed_from_u64(5);
    let (rank, input, output, rows) = (8, 96, 80, 3);
    let bits = |count: usize, rng: &mut StdRng| -> Vec<u16> {
        random_values(rng, count, 0.5)
            .iter()
            .map(|v| (v.to_bits() >> 16) as u16)
            .collect()
    };
    let (a, b_t) = (bits(rank * input, &mut rng), bits(rank * output, &mut rng));
    let widen = |v: &[u16]| -> Vec<f32> {
        v.iter()
            .map(|&b| f32::from_bits(u32::from(b) << 16))
            .collect()
    };
    let half = LowRank::from_parts_bf16(rank, input, output, a.clone(), b_t.clone()).unwrap();
    let full = LowRank::from_parts(rank, input, output, widen(&a), widen(&b_t)).unwrap();
    assert!(half.is_bf16() && !full.is_bf16());
    assert_eq!(half.byte_size() * 2, full.byte_size());
    assert_eq!(half.dense(), full.dense());
    let x = random_values(&mut rng, rows * input, 1.0);
    let run = |factors: &LowRank, rows: std::ops::Range<usize>| {
        let mut out = vec![0.5f32; rows.len() * output];
        let x = &x[rows.start * input..rows.end * input];
        let segment = [LowRankSegment {
            rows: 0..rows.len(),
            factors,
            scale: 1.5,
        }];
        apply_low_rank(x, input, &mut out, output, &segment);
        out
    };
    let (batched, reference) = (run(&half, 0..rows), run(&full, 0..rows));
    for (got, want) in batched.iter().zip(&reference) {
        assert!(
            (got - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
    for r in 0..rows {
        assert_eq!(
            run(&half, r..r + 1),
            batched[r * output..(r + 1) * output],
            "row {r}"
        );
    }
}

/// bf16 bits of random values in [-scale, scale).
fn bf16_bits(rng: &mut StdRng, count: usize, scale: f32) -> Vec<u16> {
    random_values(rng, count, scale)
        .iter()
        .map(|v| (v.to_bits() >> 16) as u16)
        .collect()
}

#[test]
fn every_variant_s_inner_loops_give_the_portable_bits() {
    let mut rng = StdRng::seed_from_u64(13);
    let portable = reference_kernels().lora;
    for set in fast_variants("lora") {
        // Lengths around the 16 dot lanes and the 64-output expand blocks, tails included.
        for (rank, width) in [(1, 1), (3, 15), (4, 16), (8, 17), (16, 64), (5, 200)] {
            let t = random_values(&mut rng, rank, 1.0);
            let b = random_values(&mut rng, rank * width, 0.5);
            let b16 = bf16_bits(&mut rng, rank * width, 0.5);
            let x = random_values(&mut rng, width, 1.0);
            let y = random_values(&mut rng, width, 1.0);
            let (mut fast, mut reference) = (y.clone(), y.clone());
            (set.lora.expand_f32)(&t, &b, &mut fast);
            (portable.expand_f32)(&t, &b, &mut reference);
            assert_eq!(fast, reference, "{} expand_f32 {rank}x{width}", set.variant);
            let (mut fast, mut reference) = (y.clone(), y);
            (set.lora.expand_bf16)(&t, &b16, &mut fast);
            (portable.expand_bf16)(&t, &b16, &mut reference);
            assert_eq!(
                fast, reference,
                "{} expand_bf16 {rank}x{width}",
                set.variant
            );
            let a = &b16[..width];
            assert_eq!(
                (set.lora.dot_bf16)(a, &x).to_bits(),
                (portable.dot_bf16)(a, &x).to_bits(),
                "{} dot_bf16 {width}",
                set.variant
            );
        }
    }
}

#[test]
fn every_variant_s_apply_matches_the_portable_one() {
    let mut rng = StdRng::seed_from_u64(17);
    let (rank, input, output, rows) = (8, 96, 80, 3);
    let f32_factors = factors(&mut rng, rank, input, output);
    let bf16_factors = LowRank::from_parts_bf16(
        rank,
        input,
        output,
        bf16_bits(&mut rng, rank * input, 0.5),
        bf16_bits(&mut rng, rank * output, 0.5),
    )
    .unwrap();
    let x = random_values(&mut rng, rows * input, 1.0);
    let run = |kernels: &Kernels, factors: &LowRank| {
        let mut out = vec![0.5f32; rows * output];
        let segment = [LowRankSegment {
            rows: 0..rows,
            factors,
            scale: 1.5,
        }];
        apply_low_rank_with(kernels, &x, input, &mut out, output, &segment);
        out
    };
    for set in fast_variants("lora apply") {
        // bf16 factors go through the LoRA kernels only: the same bits.
        assert_eq!(
            run(set, &bf16_factors),
            run(reference_kernels(), &bf16_factors),
            "{} bf16",
            set.variant
        );
        // f32 factors shrink with the variant's f32 dot product: the same sums, reassociated.
        let (fast, reference) = (
            run(set, &f32_factors),
            run(reference_kernels(), &f32_factors),
        );
        for (got, want) in fast.iter().zip(&reference) {
            assert!(
                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{} f32: {got} vs {want}",
                set.variant
            );
        }
    }
}
