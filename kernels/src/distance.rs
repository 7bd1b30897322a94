//! Distances between dense f32 vectors, for exact (brute-force) vector search and for the
//! HNSW graph's distance function.
//!
//! Written so that the compiler vectorises them: eight independent accumulators over
//! fixed-width chunks, then the tail. Results differ from a sequential sum only by
//! floating-point reassociation.

/// Lanes summed independently (one AVX register of f32).
const LANES: usize = 8;

/// Dot product of two vectors of equal length; extra elements of the longer one are ignored.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut sums = [0.0f32; LANES];
    let mut chunks_a = a.chunks_exact(LANES);
    let mut chunks_b = b.chunks_exact(LANES);
    for (ca, cb) in (&mut chunks_a).zip(&mut chunks_b) {
        for lane in 0..LANES {
            sums[lane] += ca[lane] * cb[lane];
        }
    }
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    sums.iter().sum::<f32>() + tail
}

/// Cosine distance of two unit vectors: `1 - dot`, in `0..=2`.
pub fn unit_cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - dot(a, b)).max(0.0)
}

/// Squared Euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut sums = [0.0f32; LANES];
    let mut chunks_a = a.chunks_exact(LANES);
    let mut chunks_b = b.chunks_exact(LANES);
    for (ca, cb) in (&mut chunks_a).zip(&mut chunks_b) {
        for lane in 0..LANES {
            let d = ca[lane] - cb[lane];
            sums[lane] += d * d;
        }
    }
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn dot_matches_a_sequential_sum_for_every_tail_length() {
        for len in 0..40 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let got = f64::from(dot(&a, &b));
            assert!((got - naive_dot(&a, &b)).abs() < 1e-4, "len {len}");
            let l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .sum();
            assert!(
                (f64::from(l2_squared(&a, &b)) - l2).abs() < 1e-4,
                "len {len}"
            );
        }
    }

    #[test]
    fn cosine_distance_of_a_unit_vector_to_itself_is_zero() {
        let v = [0.6f32, 0.8, 0.0];
        assert!(unit_cosine_distance(&v, &v) < 1e-6);
        assert!((unit_cosine_distance(&v, &[-0.6, -0.8, 0.0]) - 2.0).abs() < 1e-6);
    }
}
