//! Content hashing: keccak256, as Ethereum uses it, so ids can be checked on chain. Hashing
//! every ingested byte is on the hot path, so one message is hashed with the XKCP assembly of
//! `keccak-asm` (as alloy does with its `asm-keccak` feature), and many messages eight at a
//! time in AVX-512 lanes where the selected kernels have them (`provdb_kernels::keccak`).

use keccak_asm::Keccak256;
use provdb_kernels::KECCAK_LANES;

/// keccak256 of `data` (Ethereum's hash, not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// keccak256 of each message, in order. Where the selected kernels have an eight-lane keccak
/// (AVX-512), messages are hashed eight at a time, grouped by length so that lanes of one group
/// finish together.
pub fn keccak256_each(messages: &[&[u8]]) -> Vec<[u8; 32]> {
    let x8 = match provdb_kernels::keccak::kernels().x8 {
        Some(x8) if messages.len() >= KECCAK_LANES => x8,
        _ => return messages.iter().map(|m| keccak256(m)).collect(),
    };
    let mut by_length: Vec<usize> = (0..messages.len()).collect();
    by_length.sort_unstable_by_key(|&i| messages[i].len());
    let mut hashes = vec![[0u8; 32]; messages.len()];
    let mut groups = by_length.chunks_exact(KECCAK_LANES);
    for group in &mut groups {
        let group_hashes = x8(std::array::from_fn(|lane| messages[group[lane]]));
        for (&i, hash) in group.iter().zip(group_hashes) {
            hashes[i] = hash;
        }
    }
    for &i in groups.remainder() {
        hashes[i] = keccak256(messages[i]);
    }
    hashes
}

/// The text form of a 32-byte hash or id, as Ethereum tools print it: `0x` and 64 lowercase hex
/// digits.
pub fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_many_gives_each_message_its_own_hash_in_order() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for count in [0, 1, 7, 8, 9, 23, 64] {
            let messages: Vec<&[u8]> = (0..count).map(|i| &data[i..i + (i * 97) % 1500]).collect();
            let expected: Vec<[u8; 32]> = messages.iter().map(|m| keccak256(m)).collect();
            assert_eq!(keccak256_each(&messages), expected, "{count} messages");
        }
    }

    #[test]
    fn keccak_of_empty_matches_ethereum() {
        assert_eq!(
            hex32(&keccak256(b"")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }
}
