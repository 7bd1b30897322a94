//! Matrix products: shapes, batch and thread invariance, bad byte lengths.

use provdb_kernels::{Activations, KernelError, Matrix, WeightFormat, matmul, matmul_with};

use crate::{
    dequantize_q4_1, fast_variants, random_q4_1_bytes, random_values, reference_kernels, rng,
};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn batched_product_equals_row_by_row_bit_for_bit_on_any_thread_count() {
    let mut rng = rng(4);
    let (rows, cols, batch) = (300, 96, 5);
    let weights = Matrix::from_gguf_bytes(
        WeightFormat::Q4_1,
        rows,
        cols,
        &random_q4_1_bytes(&mut rng, rows * cols / 32),
    )
    .unwrap();
    let x = random_values(&mut rng, batch * cols, 1.0);
    let activations = Activations::new(&x, cols);
    let mut batched = vec![0f32; batch * rows];
    pool(1).install(|| matmul(&weights, &activations, &mut batched));
    let mut threaded = vec![0f32; batch * rows];
    pool(2).install(|| matmul(&weights, &activations, &mut threaded));
    assert_eq!(batched, threaded);
    for b in 0..batch {
        let row = &x[b * cols..(b + 1) * cols];
        let one = Activations::new(row, cols);
        let mut single = vec![0f32; rows];
        pool(2).install(|| matmul(&weights, &one, &mut single));
        assert_eq!(single, batched[b * rows..(b + 1) * rows]);
    }
}

#[test]
fn quantized_product_is_close_to_float_product() {
    let mut rng = rng(5);
    let (rows, cols) = (64, 576);
    let bytes = random_q4_1_bytes(&mut rng, rows * cols / 32);
    let quantized = Matrix::from_gguf_bytes(WeightFormat::Q4_1, rows, cols, &bytes).unwrap();
    let float = Matrix::from_f32(rows, cols, dequantize_q4_1(&bytes)).unwrap();
    let x = random_values(&mut rng, 2 * cols, 1.0);
    let activations = Activations::new(&x, cols);
    let mut a = vec![0f32; 2 * rows];
    let mut b = vec![0f32; 2 * rows];
    matmul(&quantized, &activations, &mut a);
    matmul(&float, &activations, &mut b);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(worst < 0.05, "max difference {worst}");
}

#[test]
fn every_variant_s_product_matches_the_portable_one() {
    let mut rng = rng(8);
    let (rows, cols) = (64, 576);
    let q4_1 = random_q4_1_bytes(&mut rng, rows * cols / 32);
    let values = random_values(&mut rng, rows * cols, 0.3);
    let matrices = [
        Matrix::from_gguf_bytes(WeightFormat::Q4_1, rows, cols, &q4_1).unwrap(),
        Matrix::quantize_q8_0(rows, cols, &values).unwrap(),
        Matrix::from_f32(rows, cols, values).unwrap(),
    ];
    let x = random_values(&mut rng, 3 * cols, 1.0);
    let activations = Activations::new(&x, cols);
    let variants = fast_variants("matmul");
    for weights in &matrices {
        let mut portable = vec![0f32; 3 * rows];
        matmul_with(reference_kernels(), weights, &activations, &mut portable);
        for set in &variants {
            let mut fast = vec![0f32; 3 * rows];
            matmul_with(set, weights, &activations, &mut fast);
            let worst = fast
                .iter()
                .zip(&portable)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "{} vs portable, {:?}: {worst}",
                set.variant,
                weights.format()
            );
        }
    }
}

#[test]
fn q8_0_quantization_round_trips_within_half_a_step() {
    let mut rng = rng(6);
    let values = random_values(&mut rng, 4 * 64, 3.0);
    let matrix = Matrix::quantize_q8_0(4, 64, &values).unwrap();
    assert_eq!(matrix.format(), WeightFormat::Q8_0);
    let mut row = vec![0f32; 64];
    for r in 0..4 {
        matrix.row_f32(r, &mut row);
        for (block, original) in row.chunks(32).zip(values[r * 64..].chunks(32)) {
            let step = original.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            for (q, v) in block.iter().zip(original) {
                assert!((q - v).abs() <= step * 0.51 + 1e-3, "{q} vs {v}");
            }
        }
    }
}

#[test]
fn wrong_byte_lengths_and_partial_blocks_are_refused() {
    let err = Matrix::from_gguf_bytes(WeightFormat::Q4_1, 2, 32, &[0u8; 39]).unwrap_err();
    assert!(matches!(
        err,
        KernelError::WrongLength {
            expected: 40,
            got: 39,
            ..
        }
    ));
    let err = Matrix::from_gguf_bytes(WeightFormat::Q8_0, 2, 30, &[0u8; 68]).unwrap_err();
    assert!(matches!(err, KernelError::PartialBlock { .. }));
    assert!(Matrix::from_f32(2, 3, vec![0.0; 5]).is_err());
}
