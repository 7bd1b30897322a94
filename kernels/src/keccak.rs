//! keccak256 (Ethereum's Keccak, pad `0x01`, not NIST SHA3) of eight messages at once: eight
//! Keccak-f[1600] states side by side in the eight 64-bit lanes of AVX-512 registers (the
//! layout of XKCP's `KeccakP1600times8`). One state per message would keep the scalar ALUs
//! busy with one message's rounds; eight in vector lanes share every instruction, with a native
//! 64-bit rotate (`vprolvq`) and χ's `a ^ (!b & c)` as one ternary-logic instruction; each
//! block word of the eight messages is loaded with one gather. About 4x the throughput of the
//! XKCP assembly on one message at a time, on 1.2 KB messages (this project's 2-core AMD EPYC).
//!
//! Invariant: lane `j` of the result is exactly keccak256 of `messages[j]`, whatever the other
//! messages' lengths; a lane whose message has no blocks left absorbs nothing more and its hash
//! is taken right after its own last block. Messages of similar length waste the least work.
//! Only the [`Variant::Avx512`] kernels have it ([`crate::select`] chooses): elsewhere
//! [`keccak256_x8`] answers `None`, and callers hash one message at a time (the portable way,
//! with a one-message keccak such as XKCP's, which tests and benchmarks compare against).

use crate::select::{Family, Variant};

/// Messages hashed together.
pub const KECCAK_LANES: usize = 8;

/// Bytes absorbed per permutation (1600 bits less twice the 256-bit output).
const RATE: usize = 136;

/// keccak256 of [`KECCAK_LANES`] messages at once.
pub type KeccakX8 = fn([&[u8]; KECCAK_LANES]) -> [[u8; 32]; KECCAK_LANES];

/// The keccak kernels of one variant.
#[derive(Clone, Copy)]
pub struct KeccakKernels {
    /// Name of its variant ([`Variant::name`]), for reports.
    pub name: &'static str,
    /// Eight messages at once; `None` where the variant has no such kernel (hash one at a
    /// time).
    pub x8: Option<KeccakX8>,
}

/// The kernels of `variant`.
///
/// # Safety
/// The CPU runs `variant` (the functions returned use its instructions).
unsafe fn build(variant: Variant) -> KeccakKernels {
    let x8: Option<KeccakX8> = match variant {
        Variant::Portable | Variant::Avx2 => None,
        // SAFETY: the CPU runs AVX-512F (the caller's promise).
        #[cfg(target_arch = "x86_64")]
        Variant::Avx512 => Some(|messages| unsafe { x86::keccak256_x8(messages) }),
        #[cfg(not(target_arch = "x86_64"))]
        Variant::Avx512 => None,
    };
    KeccakKernels {
        name: variant.name(),
        x8,
    }
}

static KECCAK: Family<KeccakKernels> = Family::new(build);

/// The keccak kernels of the [`crate::select::selected`] variant.
pub fn kernels() -> &'static KeccakKernels {
    KECCAK.selected()
}

/// The kernels of `variant`; `None` when this CPU does not run it.
pub fn for_variant(variant: Variant) -> Option<&'static KeccakKernels> {
    KECCAK.for_variant(variant)
}

/// The portable kernels (no eight-lane kernel).
pub(crate) fn portable() -> &'static KeccakKernels {
    const PORTABLE: KeccakKernels = KeccakKernels {
        name: "portable",
        x8: None,
    };
    &PORTABLE
}

/// keccak256 of eight messages, computed together by the selected kernels; `None` where they
/// have no eight-lane kernel.
pub fn keccak256_x8(messages: [&[u8]; KECCAK_LANES]) -> Option<[[u8; 32]; KECCAK_LANES]> {
    kernels().x8.map(|x8| x8(messages))
}

/// The last block of a message: its remaining bytes, then Keccak's padding.
fn last_block(message: &[u8]) -> [u8; RATE] {
    let tail = &message[message.len() / RATE * RATE..];
    let mut block = [0u8; RATE];
    block[..tail.len()].copy_from_slice(tail);
    block[tail.len()] ^= 0x01;
    block[RATE - 1] ^= 0x80;
    block
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{KECCAK_LANES, RATE, last_block};

    /// The round constants (ι).
    const ROUND_CONSTANTS: [u64; 24] = [
        0x0000_0000_0000_0001,
        0x0000_0000_0000_8082,
        0x8000_0000_0000_808a,
        0x8000_0000_8000_8000,
        0x0000_0000_0000_808b,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8009,
        0x0000_0000_0000_008a,
        0x0000_0000_0000_0088,
        0x0000_0000_8000_8009,
        0x0000_0000_8000_000a,
        0x0000_0000_8000_808b,
        0x8000_0000_0000_008b,
        0x8000_0000_0000_8089,
        0x8000_0000_0000_8003,
        0x8000_0000_0000_8002,
        0x8000_0000_0000_0080,
        0x0000_0000_0000_800a,
        0x8000_0000_8000_000a,
        0x8000_0000_8000_8081,
        0x8000_0000_0000_8080,
        0x0000_0000_8000_0001,
        0x8000_0000_8000_8008,
    ];

    /// ρ's rotation of lane `x + 5y`.
    const ROTATIONS: [u32; 25] = [
        0, 1, 62, 28, 27, //
        36, 44, 6, 55, 20, //
        3, 10, 43, 25, 39, //
        41, 45, 15, 21, 8, //
        18, 2, 61, 56, 14,
    ];

    /// `ternarylogic` immediates: three-way xor, and χ's `a ^ (!b & c)`.
    const XOR3: i32 = 0x96;
    const CHI: i32 = 0xd2;

    /// Keccak-f[1600] on eight states; `a[x + 5y]` holds lane (x, y) of each state.
    #[target_feature(enable = "avx512f")]
    fn permute(a: &mut [__m512i; 25]) {
        for &constant in &ROUND_CONSTANTS {
            // θ: each column's parity, folded into the lanes of the columns either side.
            let mut c = [_mm512_setzero_si512(); 5];
            for (x, parity) in c.iter_mut().enumerate() {
                let t = _mm512_ternarylogic_epi64::<XOR3>(a[x], a[x + 5], a[x + 10]);
                *parity = _mm512_ternarylogic_epi64::<XOR3>(t, a[x + 15], a[x + 20]);
            }
            let mut b = [_mm512_setzero_si512(); 25];
            for y in 0..5 {
                for x in 0..5 {
                    let left = c[(x + 4) % 5];
                    let right = _mm512_rol_epi64::<1>(c[(x + 1) % 5]);
                    let lane = _mm512_ternarylogic_epi64::<XOR3>(a[x + 5 * y], left, right);
                    // ρ and π: lane (x, y) rotated, to position (y, 2x + 3y).
                    let rotation = _mm512_set1_epi64(i64::from(ROTATIONS[x + 5 * y]));
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = _mm512_rolv_epi64(lane, rotation);
                }
            }
            // χ, then ι.
            for y in 0..5 {
                for x in 0..5 {
                    a[x + 5 * y] = _mm512_ternarylogic_epi64::<CHI>(
                        b[x + 5 * y],
                        b[(x + 1) % 5 + 5 * y],
                        b[(x + 2) % 5 + 5 * y],
                    );
                }
            }
            a[0] = _mm512_xor_si512(a[0], _mm512_set1_epi64(constant as i64));
        }
    }

    /// The sponge over eight messages.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn keccak256_x8(messages: [&[u8]; KECCAK_LANES]) -> [[u8; 32]; KECCAK_LANES] {
        let blocks = messages.map(|m| m.len() / RATE + 1);
        let last = messages.map(last_block);
        let rounds = blocks.iter().copied().max().unwrap_or(1);
        let mut state = [_mm512_setzero_si512(); 25];
        let mut hashes = [[0u8; 32]; KECCAK_LANES];
        let zero = [0u8; RATE];
        for block in 0..rounds {
            // Where each lane's block is: word i of all eight lanes is then one gather.
            let addresses: [i64; KECCAK_LANES] = std::array::from_fn(|lane| {
                let bytes: &[u8] = match block.cmp(&(blocks[lane] - 1)) {
                    std::cmp::Ordering::Less => &messages[lane][block * RATE..(block + 1) * RATE],
                    std::cmp::Ordering::Equal => &last[lane],
                    std::cmp::Ordering::Greater => &zero,
                };
                bytes.as_ptr() as i64
            });
            // SAFETY: 64 readable bytes.
            let mut addresses = unsafe { _mm512_loadu_si512(addresses.as_ptr().cast()) };
            let eight = _mm512_set1_epi64(8);
            for lane_state in state.iter_mut().take(RATE / 8) {
                // SAFETY: each address is that of a block of `RATE` bytes, of which this reads
                // the word at the current offset (below RATE); the base is 0, the addresses
                // absolute.
                let loaded =
                    unsafe { _mm512_i64gather_epi64::<1>(addresses, std::ptr::null::<i64>()) };
                *lane_state = _mm512_xor_si512(*lane_state, loaded);
                addresses = _mm512_add_epi64(addresses, eight);
            }
            permute(&mut state);
            if blocks.contains(&(block + 1)) {
                let mut out = [[0u64; KECCAK_LANES]; 4];
                for (i, words) in out.iter_mut().enumerate() {
                    // SAFETY: `words` is 64 writable bytes; the store is unaligned.
                    unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), state[i]) };
                }
                for lane in (0..KECCAK_LANES).filter(|&lane| blocks[lane] == block + 1) {
                    for (i, words) in out.iter().enumerate() {
                        hashes[lane][8 * i..8 * i + 8].copy_from_slice(&words[lane].to_le_bytes());
                    }
                }
            }
        }
        hashes
    }
}
