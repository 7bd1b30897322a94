//! provdb-kernels: the numeric hot loops, kept apart so they can be tuned and benchmarked alone.
//!
//! Owns the block-quantized weight formats of GGUF that provdb computes with directly (Q4_1,
//! Q8_0) and the 8-bit activation blocks they are multiplied with ([`blocks`]), their dot
//! products ([`dot`]), the threaded matrix product over a batch of activation rows used for
//! prefill and batched decoding ([`matmul`]), the segmented multi-adapter LoRA apply
//! ([`lora`]), keccak256 of eight messages at once in AVX-512 lanes for hashing ingested
//! records ([`keccak`]), the text scan of SQL's record reads ([`text`]), and distances for
//! exact vector search ([`distance`]). Each family has a portable build and x86-64 SIMD builds;
//! [`select`] detects the CPU once, reads `PROVDB_KERNELS` once, and gives every family the
//! same [`Variant`]; [`Kernels`] gathers every family's kernels of one variant.
//!
//! Invariants: every variant computes what the portable one does (bit for bit for LoRA and the
//! text scan, the integer products exactly and the float sums in another order for the dot
//! products); every matmul output is one sequential dot product, whatever the batch size or
//! thread count, so results are bit-identical across both. Depends on nothing else in provdb.

pub mod blocks;
pub mod distance;
pub mod dot;
mod error;
pub mod keccak;
pub mod lora;
pub mod matmul;
pub mod select;
mod table;
pub mod text;

pub use blocks::{Activations, BLOCK, BlockQ4_1, BlockQ8, BlockQ8_0, WeightFormat};
pub use error::KernelError;
pub use keccak::{KECCAK_LANES, keccak256_x8};
pub use lora::{LowRank, LowRankSegment, apply_low_rank, apply_low_rank_with};
pub use matmul::{Matrix, matmul, matmul_many, matmul_many_with, matmul_with};
pub use select::Variant;
pub use table::Kernels;
