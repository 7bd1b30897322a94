//! Content hashing: keccak256, as Ethereum uses it, so ids can be checked on chain. Hashing
//! every ingested byte is on the hot path, so this uses the XKCP assembly of `keccak-asm` (as
//! alloy does with its `asm-keccak` feature).

use keccak_asm::Keccak256;

use crate::model::RecordId;

/// keccak256 of `data` (Ethereum's hash, not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// The id of a record whose canonical content is `content`.
pub fn record_id_of(content: &str) -> RecordId {
    RecordId(keccak256(content.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak_of_empty_matches_ethereum() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }
}
