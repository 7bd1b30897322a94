//! The eight-lane keccak256 gives each lane exactly the hash of its own message (checked
//! against the XKCP assembly that hashes one message at a time), whatever the other lanes'
//! lengths, at every length where the padding changes shape.

use keccak_asm::Keccak256;
use provdb_kernels::{KECCAK_LANES, keccak_x8_available, keccak256_x8};
use rand::Rng;

fn one_at_a_time(message: &[u8]) -> [u8; 32] {
    Keccak256::digest(message).into()
}

/// Checks one set of eight messages; false when this CPU cannot run the kernel.
fn check(messages: [&[u8]; KECCAK_LANES]) -> bool {
    let Some(hashes) = keccak256_x8(messages) else {
        return false;
    };
    for (lane, (message, hash)) in messages.iter().zip(hashes).enumerate() {
        assert_eq!(
            hash,
            one_at_a_time(message),
            "lane {lane}, a message of {} bytes",
            message.len()
        );
    }
    true
}

#[test]
fn every_lane_is_the_hash_of_its_own_message() {
    let mut rng = crate::rng(11);
    let data: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    // Around the rate (136 bytes): a tail of 0, 1, 134 and 135 bytes, where the padding's two
    // marks fall in one byte or the block fills up.
    let edges = [0, 1, 134, 135, 136, 137, 271, 272, 273, 1000];
    let mut ran = false;
    for window in edges.windows(2).chain([[0, 0].as_slice()]) {
        let messages: [&[u8]; 8] = std::array::from_fn(|lane| {
            let length = if lane % 2 == 0 { window[0] } else { window[1] };
            &data[lane * 7..lane * 7 + length]
        });
        ran = check(messages);
    }
    for _ in 0..200 {
        let messages: [&[u8]; 8] = std::array::from_fn(|_| {
            let start = rng.random_range(0..1024);
            let length = rng.random_range(0..3000);
            &data[start..start + length]
        });
        ran = check(messages);
    }
    assert_eq!(ran, keccak_x8_available());
}

#[test]
fn ethereum_keccak_of_the_empty_message() {
    if let Some(hashes) = keccak256_x8([b"".as_slice(); 8]) {
        let expected = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
        for hash in hashes {
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected);
        }
    }
}
