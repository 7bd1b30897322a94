//! [`RecordView`]: a stored record read in place. Scans decode each value into a view that
//! borrows its strings and bytes from the RocksDB value (or from an owned [`Record`]), so
//! reading a million records allocates nothing per record; a caller copies only what it keeps
//! (the Arrow export copies only the projected columns).
//!
//! Invariant: the view's fields are `Record`'s, in `Record`'s order, with wire-compatible types
//! (postcard writes `Vec<u8>` and `&[u8]`, `String` and `&str` alike), so any stored record
//! decodes as a view; `chunk_ranges` is only counted. The round-trip test below holds them
//! together.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{Result, StorageError};
use crate::model::{Address, DatanetId, Record, RecordId, Status, text_in};

/// A stored record, borrowed: see the module docs. Fields mean what [`Record`]'s mean.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub struct RecordView<'a> {
    /// keccak256 of `content`.
    pub record_id: RecordId,
    /// Its Datanet.
    pub datanet_id: DatanetId,
    /// Who contributed it.
    pub contributor: Address,
    /// Signature bytes, if any.
    #[serde(borrow)]
    pub signature: Option<&'a [u8]>,
    /// License.
    pub license: &'a str,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Version number.
    pub version: u32,
    /// The version this one replaces.
    pub supersedes: Option<RecordId>,
    /// Quality in 0..=1.
    pub quality: Option<f32>,
    /// Curation state.
    pub status: Status,
    /// Canonical JSON content.
    pub content: &'a str,
    /// Byte range in `content` of the text column's JSON string literal.
    pub text_span: Option<(u32, u32)>,
    /// Sequence number of its batch.
    pub sequence: u64,
    /// Id of its first chunk.
    pub first_chunk_id: u64,
    /// Number of chunks.
    pub chunk_count: ChunkCount,
}

/// The number of a record's chunk ranges, counted without collecting them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkCount(pub u32);

impl<'de> Deserialize<'de> for ChunkCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Count;
        impl<'de> Visitor<'de> for Count {
            type Value = ChunkCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of chunk ranges")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<ChunkCount, A::Error> {
                let mut count = 0u32;
                while seq.next_element::<(u32, u32)>()?.is_some() {
                    count = count
                        .checked_add(1)
                        .ok_or_else(|| de::Error::custom("too many chunk ranges"))?;
                }
                Ok(ChunkCount(count))
            }
        }
        deserializer.deserialize_seq(Count)
    }
}

impl<'a> RecordView<'a> {
    /// Decodes a stored value of the `records` column family; `key` names it in errors.
    pub(crate) fn decode(cf: &'static str, key: &[u8], bytes: &'a [u8]) -> Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| StorageError::Corruption {
            cf,
            key: hex::encode(key),
            reason: e.to_string(),
        })
    }

    /// The text column's value, borrowed from the content when its JSON literal has no escape
    /// (the common case), unescaped into a new string otherwise; `None` without text.
    pub fn text(&self) -> Result<Option<Cow<'a, str>>> {
        let Some((start, end)) = self.text_span else {
            return Ok(None);
        };
        let literal = self
            .content
            .get(start as usize..end as usize)
            .unwrap_or_default();
        let bytes = literal.as_bytes();
        // A JSON string without `"`, `\` or control characters between its quotes is its own
        // value; serde_json would return the same characters.
        // (A fold without early exit, which the compiler vectorises: most texts are plain.)
        let plain = bytes.len() >= 2
            && bytes[0] == b'"'
            && bytes[bytes.len() - 1] == b'"'
            && bytes[1..bytes.len() - 1].iter().fold(true, |plain, &b| {
                plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
            });
        if plain {
            return Ok(Some(Cow::Borrowed(&literal[1..literal.len() - 1])));
        }
        text_in(self.content, (start, end)).map(|t| Some(Cow::Owned(t)))
    }
}

impl Record {
    /// This record as a view (borrowing its strings).
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            record_id: self.record_id,
            datanet_id: self.datanet_id,
            contributor: self.contributor,
            signature: self.signature.as_deref(),
            license: &self.license,
            created_at_ms: self.created_at_ms,
            version: self.version,
            supersedes: self.supersedes,
            quality: self.quality,
            status: self.status,
            content: &self.content,
            text_span: self.text_span,
            sequence: self.sequence,
            first_chunk_id: self.first_chunk_id,
            chunk_count: ChunkCount(self.chunk_ranges.len() as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::encode;

    fn record(content: String, span: Option<(u32, u32)>, ranges: usize) -> Record {
        Record {
            record_id: RecordId([3; 32]),
            datanet_id: 9,
            contributor: Address([7; 20]),
            signature: Some(vec![1; 65]),
            license: "MIT".into(),
            created_at_ms: -12,
            version: 2,
            supersedes: Some(RecordId([4; 32])),
            quality: Some(0.5),
            status: Status::Rejected,
            content,
            text_span: span,
            sequence: 77,
            first_chunk_id: 1 << 40,
            chunk_ranges: (0..ranges as u32).map(|i| (i, i + 1)).collect(),
        }
    }

    proptest! {
        #[test]
        fn a_stored_record_decodes_as_its_view(
            text in ".*", signature in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
            quality in proptest::option::of(0f32..=1.0), ranges in 0usize..300, seq in any::<u64>(),
        ) {
            let literal = serde_json::to_string(&text).unwrap();
            let content = format!("{{\"text\":{literal}}}");
            let span = Some((8, 8 + literal.len() as u32));
            let mut stored = record(content, span, ranges);
            stored.signature = signature;
            stored.quality = quality;
            stored.sequence = seq;
            let bytes = encode(&stored).unwrap();
            let view = RecordView::decode("records", b"k", &bytes).unwrap();
            prop_assert_eq!(view, stored.view());
            prop_assert_eq!(view.chunk_count.0 as usize, ranges);
            let read = view.text().unwrap();
            prop_assert_eq!(read.as_deref(), Some(text.as_str()));
            prop_assert_eq!(view.text().unwrap().map(Cow::into_owned), stored.text().unwrap());
        }

        #[test]
        fn garbage_is_corruption_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = RecordView::decode("records", b"k", &bytes) {
                prop_assert!(matches!(e, StorageError::Corruption { .. }), "{e}");
            }
        }
    }

    #[test]
    fn plain_text_is_borrowed_and_escaped_text_unescaped() {
        let content = r#"{"text":"café au lait"}"#;
        let plain = record(content.into(), Some((8, content.len() as u32 - 1)), 0);
        assert!(matches!(
            plain.view().text().unwrap(),
            Some(Cow::Borrowed("café au lait"))
        ));
        let content = r#"{"text":"a \"b\"\n"}"#;
        let escaped = record(content.into(), Some((8, content.len() as u32 - 1)), 0);
        assert!(matches!(
            escaped.view().text().unwrap(),
            Some(Cow::Owned(ref t)) if t == "a \"b\"\n"
        ));
        assert_eq!(record("{}".into(), None, 0).view().text().unwrap(), None);
        let bad = record(r#"{"text":"x"}"#.into(), Some((3, 40)), 0);
        assert!(bad.view().text().is_err());
    }
}
