//! Value encoding: postcard (compact, versionless serde) for structs, big-endian for counters.
//! Every decode failure becomes `StorageError::Corruption` naming the column family and key.
//! Records and Datanets carry an extension after their struct (see `acts`): they are encoded
//! and decoded only by `encode_record`/`decode_record` and `encode_datanet`/`decode_datanet`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::acts::{RecordExtension, decode_policy, encode_near_duplicates, encode_policy};
use crate::error::{Result, StorageError};
use crate::ledger::{AnswerRecord, LedgerEntry};
use crate::model::{Datanet, Record};
use crate::money::EntryDetail;

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

/// An answer's stored value: its struct, then its training attribution when it has one (a
/// postcard `String`; answers stored before it end with the struct).
pub(crate) fn encode_answer(answer: &AnswerRecord) -> Result<Vec<u8>> {
    let mut bytes = encode_sized(answer, answer.text.len() + 256)?;
    if let Some(method) = &answer.training_attribution {
        bytes = postcard::to_extend(method, bytes)
            .map_err(|e| StorageError::Internal(format!("encode: {e}")))?;
    }
    Ok(bytes)
}

/// Decodes an answer's stored value (with or without its training attribution).
pub(crate) fn decode_answer(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<AnswerRecord> {
    let corrupt = |reason: String| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason,
    };
    let (mut answer, rest): (AnswerRecord, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        answer.training_attribution =
            Some(postcard::from_bytes(rest).map_err(|e| corrupt(e.to_string()))?);
    }
    Ok(answer)
}

/// A record's stored value: its struct, then its extension.
pub(crate) fn encode_record(record: &Record) -> Result<Vec<u8>> {
    let mut bytes = encode_sized(record, record.content.len() + 256)?;
    let extension = RecordExtension {
        scheme: record.signature_scheme,
        act: record.act,
    };
    extension.encode_into(&mut bytes);
    Ok(bytes)
}

/// Decodes a record's stored value (with or without extension).
pub(crate) fn decode_record(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<Record> {
    let corrupt = |reason: String| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason,
    };
    let (mut record, rest): (Record, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    let extension = RecordExtension::decode(rest, record.signature.is_some()).map_err(corrupt)?;
    record.signature_scheme = extension.scheme;
    record.act = extension.act;
    Ok(record)
}

/// A Datanet's stored value: its struct, then its signature policy.
pub(crate) fn encode_datanet(datanet: &Datanet) -> Result<Vec<u8>> {
    let mut bytes = encode(datanet)?;
    encode_policy(&datanet.signatures, &mut bytes);
    encode_near_duplicates(&datanet.near_duplicates, &mut bytes);
    Ok(bytes)
}

/// Decodes a Datanet's stored value (with or without extension).
pub(crate) fn decode_datanet(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<Datanet> {
    let corrupt = |reason: String| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason,
    };
    let (mut datanet, rest): (Datanet, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    (datanet.signatures, datanet.near_duplicates) = decode_policy(rest).map_err(corrupt)?;
    Ok(datanet)
}

/// A ledger entry's stored value: its struct, then its detail when it is a money movement.
pub(crate) fn encode_entry(entry: &LedgerEntry) -> Result<Vec<u8>> {
    let mut bytes = encode_sized(entry, 256)?;
    if entry.detail != EntryDetail::None {
        bytes = postcard::to_extend(&entry.detail, bytes)
            .map_err(|e| StorageError::Internal(format!("encode: {e}")))?;
    }
    Ok(bytes)
}

/// Decodes a ledger entry's stored value (with or without detail).
pub(crate) fn decode_entry(cf: &'static str, key: &[u8], bytes: &[u8]) -> Result<LedgerEntry> {
    let corrupt = |reason: String| StorageError::Corruption {
        cf,
        key: hex::encode(key),
        reason,
    };
    let (mut entry, rest): (LedgerEntry, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        entry.detail = match postcard::take_from_bytes::<EntryDetail>(rest) {
            Ok((detail, [])) if detail != EntryDetail::None => detail,
            Ok(_) => return Err(corrupt("bytes after the entry's detail".into())),
            Err(e) => return Err(corrupt(format!("entry detail: {e}"))),
        };
    }
    Ok(entry)
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
    use crate::acts::{ActingRole, SignatureScheme, VersionAct};
    use crate::model::{Address, RecordId, Status};

    #[test]
    fn an_answers_training_attribution_is_an_extension_older_answers_lack() {
        let mut answer = AnswerRecord {
            answer_id: crate::ledger::AnswerId([3; 32]),
            ts_ms: 9,
            caller: None,
            datanet_ids: vec![1],
            question: "q".into(),
            text: "t".into(),
            model: "m".into(),
            adapter: Some("0xab:1".into()),
            fee_wei: 5,
            attribution: "cited".into(),
            training_attribution: None,
            citations: Vec::new(),
            first_seq: 2,
            entries: 3,
        };
        // An answer stored before the extension is the struct alone.
        let old = encode(&answer).unwrap();
        assert_eq!(encode_answer(&answer).unwrap(), old);
        assert_eq!(decode_answer("answers", b"k", &old).unwrap(), answer);
        answer.training_attribution = Some("0xab:influence".into());
        let bytes = encode_answer(&answer).unwrap();
        assert_eq!(decode_answer("answers", b"k", &bytes).unwrap(), answer);
    }

    proptest! {
        #[test]
        fn record_round_trips(
            id in any::<[u8; 32]>(), who in any::<[u8; 20]>(), sig in proptest::option::of(proptest::collection::vec(any::<u8>(), 65)),
            content in ".*", version in 1u32.., quality in proptest::option::of(0f32..=1.0), seq in any::<u64>(),
        ) {
            let record = Record {
                record_id: RecordId(id), datanet_id: 7, contributor: Address(who), signature: sig.clone(),
                license: "MIT".into(), created_at_ms: -5, version, supersedes: Some(RecordId(id)),
                quality, status: Status::Slashed, content, text_span: Some((1, 2)), sequence: seq, first_chunk_id: seq / 2, chunk_ranges: vec![(0, 1), (1, 2)],
                signature_scheme: sig.as_ref().map(|_| SignatureScheme::Eip712),
                act: Some(VersionAct { by: Address(who), role: ActingRole::Curator }),
            };
            let bytes = encode_record(&record).unwrap();
            let back = decode_record("records", &id, &bytes).unwrap();
            prop_assert_eq!(&back, &record);
            // A value written before extensions reads as EIP-191 with no act.
            let old = decode_record("records", &id, &encode(&record).unwrap()).unwrap();
            prop_assert_eq!(old.signature_scheme, record.signature.as_ref().map(|_| SignatureScheme::Eip191));
            prop_assert_eq!(old.act, None);
        }

        #[test]
        fn garbage_is_corruption_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Err(e) = decode_record("records", b"k", &bytes) {
                prop_assert!(matches!(e, StorageError::Corruption { .. }), "{e}");
            }
        }
    }
}
