//! Baselines that benchmarks measure in the same run as the models: what the same library
//! (candle, same threads, same machine) reaches on a plain large matrix product.

use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::error::{InferenceError, Result};

/// GFLOP/s of an f32 `size x size` by `size x size` matrix product through candle on the CPU,
/// best of `repeats` after one warm-up.
pub fn matmul_gflops(size: usize, repeats: usize) -> Result<f64> {
    let compute = |source| InferenceError::Compute {
        model: "matmul baseline".into(),
        source,
    };
    let device = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (size, size), &device).map_err(compute)?;
    let b = Tensor::randn(0f32, 1.0, (size, size), &device).map_err(compute)?;
    a.matmul(&b).map_err(compute)?;
    let mut best = f64::MAX;
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        let product = a.matmul(&b).map_err(compute)?;
        // Reading one value makes sure the product was computed.
        product.get(0).and_then(|row| row.get(0)).map_err(compute)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(2.0 * (size as f64).powi(3) / best / 1e9)
}
