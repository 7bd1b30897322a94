//! provdb-kernels: the numeric hot loops, kept apart so they can be tuned and benchmarked alone.
//!
//! Owns the block-quantized weight formats of GGUF that provdb computes with directly (Q4_1,
//! Q8_0) and the 8-bit activation blocks they are multiplied with ([`blocks`]), their dot
//! products with a portable path and an AVX2/FMA/F16C path chosen at run time ([`dot`]), and the
//! threaded matrix product over a batch of activation rows used for prefill and batched decoding
//! ([`matmul`]); and SIMD distances for exact vector search ([`distance`]). Every matmul output
//! is one sequential dot product, whatever the batch size or thread count, so results are
//! bit-identical across both. The segmented multi-adapter LoRA apply ([`lora`]). keccak256 of
//! eight messages at once in AVX-512 lanes, for hashing ingested records ([`keccak`]). Later: a
//! `cuda` feature.
//! Depends on nothing else in provdb.

pub mod blocks;
pub mod distance;
pub mod dot;
mod error;
pub mod keccak;
pub mod lora;
pub mod matmul;

pub use blocks::{Activations, BLOCK, BlockQ4_1, BlockQ8, BlockQ8_0, WeightFormat};
pub use error::KernelError;
pub use keccak::{KECCAK_LANES, keccak_x8_available, keccak256_x8};
pub use lora::{LowRank, LowRankSegment, apply_low_rank};
pub use matmul::{Matrix, matmul, matmul_many, matmul_many_with, matmul_with};
