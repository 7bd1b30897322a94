//! Value encoding: postcard (compact, versionless serde) for structs, big-endian for counters.
//! Every decode failure becomes `StorageError::Corruption` naming the column family and key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StorageError};

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    encode_sized(value, 64)
}

/// `encode` into a buffer of `capacity` bytes, for values whose size the caller knows roughly.
pub(crate) fn encode_sized<T: Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>> {
    postcard::to_extend(value, Vec::with_capacity(capacity))
        .map_err(|e| StorageError::Internal(format!("encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason: e.to_string(),
    })
}

pub(crate) fn decode_u64(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason: format!("expected 8 bytes, found {}", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{Address, Record, RecordId, Status};

    proptest! {
        #[test]
        fn record_round_trips(
            id in any::<[u8; 32]>(), who in any::<[u8; 20]>(), sig in proptest::option::of(proptest::collection::vec(any::<u8>(), 65)),
            content in ".*", version in 1u32.., quality in proptest::option::of(0f32..=1.0), seq in any::<u64>(),
        ) {
            let record = Record {
                record_id: RecordId(id), datanet_id: 7, contributor: Address(who), signature: sig,
                license: "MIT".into(), created_at_ms: -5, version, supersedes: Some(RecordId(id)),
                quality, status: Status::Slashed, content, text_span: Some((1, 2)), sequence: seq, first_chunk_id: seq / 2, chunk_ranges: vec![(0, 1), (1, 2)],
            };
            let bytes = encode(&record).unwrap();
            let back: Record = decode("records", &id, &bytes).unwrap();
            prop_assert_eq!(back, record);
        }

        #[test]
        fn garbage_is_corruption_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Err(e) = decode::<Record>("records", b"k", &bytes) {
                prop_assert!(matches!(e, StorageError::Corruption { .. }), "{e}");
            }
        }
    }
}
