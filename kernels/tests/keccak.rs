//! The eight-lane keccak256 gives each lane exactly the hash of its own message (checked
//! against the XKCP assembly that hashes one message at a time, the portable way), whatever the
//! other lanes' lengths, at every length where the padding changes shape; on every variant that
//! has it, and only AVX-512 has it.

use keccak_asm::Keccak256;
use provdb_kernels::keccak::KeccakX8;
use provdb_kernels::{KECCAK_LANES, Kernels, Variant, keccak256_x8};
use rand::Rng;

use crate::{checked_fast_variants, compared, reference_kernels};

fn one_at_a_time(message: &[u8]) -> [u8; 32] {
    Keccak256::digest(message).into()
}

/// The variants with an eight-lane kernel, after checking that exactly the AVX-512 one has it.
fn x8_variants() -> Vec<(&'static Kernels, KeccakX8)> {
    assert!(reference_kernels().keccak.x8.is_none());
    let mut with_x8 = Vec::new();
    for set in checked_fast_variants() {
        assert_eq!(
            set.keccak.x8.is_some(),
            set.variant == Variant::Avx512,
            "{}",
            set.variant
        );
        if let Some(x8) = set.keccak.x8 {
            with_x8.push((set, x8));
        }
    }
    let sets: Vec<&Kernels> = with_x8.iter().map(|(set, _)| *set).collect();
    compared("keccak x8", &sets);
    with_x8
}

/// Checks one set of eight messages.
fn check(x8: KeccakX8, variant: Variant, messages: [&[u8]; KECCAK_LANES]) {
    for (lane, (message, hash)) in messages.iter().zip(x8(messages)).enumerate() {
        assert_eq!(
            hash,
            one_at_a_time(message),
            "{variant}: lane {lane}, a message of {} bytes",
            message.len()
        );
    }
}

#[test]
fn every_lane_is_the_hash_of_its_own_message() {
    let mut rng = crate::rng(11);
    let data: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    // Around the rate (136 bytes): a tail of 0, 1, 134 and 135 bytes, where the padding's two
    // marks fall in one byte or the block fills up.
    let edges = [0, 1, 134, 135, 136, 137, 271, 272, 273, 1000];
    let random: Vec<[(usize, usize); KECCAK_LANES]> = (0..200)
        .map(|_| std::array::from_fn(|_| (rng.random_range(0..1024), rng.random_range(0..3000))))
        .collect();
    for (set, x8) in x8_variants() {
        for window in edges.windows(2).chain([[0, 0].as_slice()]) {
            let messages: [&[u8]; 8] = std::array::from_fn(|lane| {
                let length = if lane % 2 == 0 { window[0] } else { window[1] };
                &data[lane * 7..lane * 7 + length]
            });
            check(x8, set.variant, messages);
        }
        for spans in &random {
            check(
                x8,
                set.variant,
                spans.map(|(start, length)| &data[start..start + length]),
            );
        }
    }
}

#[test]
fn ethereum_keccak_of_the_empty_message() {
    let expected = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
    assert_eq!(hex(&one_at_a_time(b"")), expected);
    for (set, x8) in x8_variants() {
        for hash in x8([b"".as_slice(); 8]) {
            assert_eq!(hex(&hash), expected, "{}", set.variant);
        }
    }
    // The selected kernels' entry point answers exactly when the selected variant has one.
    let selected = Kernels::selected();
    assert_eq!(
        keccak256_x8([b"".as_slice(); 8]).is_some(),
        selected.keccak.x8.is_some()
    );
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
