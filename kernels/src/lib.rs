//! provdb-kernels: the numeric hot loops, kept apart so they can be tuned and benchmarked alone.
//!
//! Will own: SIMD distance functions (dot, cosine, L2) for exact vector search, quantized
//! matrix-vector products for CPU decoding, the batched multi-adapter LoRA apply
//! (`y[seg] += s · (x[seg] · A) · B` per adapter segment), and, behind a `cuda` feature, their
//! GPU versions. Depends on nothing else in provdb.
pub mod distance;
