//! [`RecordView`]: a stored record read in place. Scans decode each value into a view that
//! borrows its strings and bytes from the RocksDB value (or from an owned [`Record`]), so
//! reading a million records allocates nothing per record; a caller copies only what it keeps
//! (the Arrow export copies only the projected columns). The content's UTF-8 is checked only
//! when it is read ([`RecordView::content`], [`RecordView::text`]), so a scan that projects
//! neither never touches it.
//!
//! The decoder is written by hand for `Record`'s postcard encoding (fields in declaration
//! order; LEB128 varints, zigzag for `i64`; arrays as raw bytes; `Option` as a 0/1 tag; `f32`
//! as 4 little-endian bytes; enums as their variant index; strings and byte vectors as a varint
//! length and the bytes): serde's visitors cost more than the scan itself. Invariant: it reads
//! what `codec::encode_record` writes: the struct, whose chunk ranges it skips (no view needs
//! them), then the extension (`acts`; absent in values written before it); the property test
//! below holds the two together, and any change to `Record` must change both.

use std::borrow::Cow;

use crate::acts::{RecordExtension, SignatureScheme, VersionAct};
use crate::error::{Result, StorageError};
use crate::model::{Address, DatanetId, Record, RecordId, Status, bad_text_span, unescape_literal};

/// A stored record, borrowed: see the module docs. Fields mean what [`Record`]'s mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecordView<'a> {
    /// keccak256 of the content.
    pub record_id: RecordId,
    /// Its Datanet.
    pub datanet_id: DatanetId,
    /// Who contributed it.
    pub contributor: Address,
    /// Signature bytes, if any.
    pub signature: Option<&'a [u8]>,
    /// License, UTF-8 not yet checked.
    license: &'a [u8],
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
    /// Canonical JSON content, UTF-8 not yet checked.
    content: &'a [u8],
    /// Byte range in the content of the text column's JSON string literal.
    pub text_span: Option<(u32, u32)>,
    /// Sequence number of its batch.
    pub sequence: u64,
    /// Id of its first chunk.
    pub first_chunk_id: u64,
    /// Number of chunks.
    pub chunk_count: u32,
    /// What the signature was made over.
    pub signature_scheme: Option<SignatureScheme>,
    /// Who stored this version over the one it supersedes, in which role.
    pub act: Option<VersionAct>,
}

/// A cursor over one stored value; every failure names the value's column family and key.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    cf: &'static str,
    key: &'a [u8],
}

impl<'a> Reader<'a> {
    fn corrupt(&self, what: &str) -> StorageError {
        StorageError::Corruption {
            cf: self.cf,
            key: hex::encode(self.key),
            reason: format!("record value: {what} at byte {}", self.at),
        }
    }

    #[inline(always)]
    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        match self.bytes.get(self.at..self.at.saturating_add(count)) {
            Some(taken) => {
                self.at += count;
                Ok(taken)
            }
            None => Err(self.corrupt("truncated")),
        }
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline(always)]
    fn varint(&mut self, max_bytes: usize) -> Result<u64> {
        let (mut value, mut shift, mut at) = (0u64, 0u32, self.at);
        while let Some(&byte) = self.bytes.get(at) {
            at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                self.at = at;
                return Ok(value);
            }
            shift += 7;
            if shift as usize >= 7 * max_bytes {
                break;
            }
        }
        Err(self.corrupt("bad varint"))
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.varint(5)?).map_err(|_| self.corrupt("u32 out of range"))
    }

    #[inline(always)]
    fn u64(&mut self) -> Result<u64> {
        self.varint(10)
    }

    #[inline(always)]
    fn i64(&mut self) -> Result<i64> {
        let zigzag = self.varint(10)?;
        Ok((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
    }

    #[inline(always)]
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let length = usize::try_from(self.u64()?).map_err(|_| self.corrupt("length"))?;
        self.take(length)
    }

    #[inline(always)]
    fn some(&mut self) -> Result<bool> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.corrupt("bad option tag")),
        }
    }
}

impl<'a> RecordView<'a> {
    /// Decodes a stored value of the `records` column family; `key` names it in errors.
    pub(crate) fn decode(cf: &'static str, key: &'a [u8], bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader {
            bytes,
            at: 0,
            cf,
            key,
        };
        let record_id = RecordId(r.array()?);
        let datanet_id = r.u32()?;
        let contributor = Address(r.array()?);
        let signature = if r.some()? { Some(r.bytes()?) } else { None };
        let license = r.bytes()?;
        let created_at_ms = r.i64()?;
        let version = r.u32()?;
        let supersedes = if r.some()? {
            Some(RecordId(r.array()?))
        } else {
            None
        };
        let quality = if r.some()? {
            Some(f32::from_le_bytes(r.array()?))
        } else {
            None
        };
        let status = match r.u32()? {
            0 => Status::Pending,
            1 => Status::Approved,
            2 => Status::Rejected,
            3 => Status::Slashed,
            4 => Status::Tombstoned,
            _ => return Err(r.corrupt("unknown status")),
        };
        let content = r.bytes()?;
        let text_span = if r.some()? {
            Some((r.u32()?, r.u32()?))
        } else {
            None
        };
        let sequence = r.u64()?;
        let first_chunk_id = r.u64()?;
        // The chunks' byte ranges (`chunk_count` pairs of varints): a view does not need them,
        // only skips them to the extension.
        let chunk_count = r.u32()?;
        for _ in 0..chunk_count {
            r.u32()?;
            r.u32()?;
        }
        let extension = RecordExtension::decode(&r.bytes[r.at..], signature.is_some())
            .map_err(|e| r.corrupt(&e))?;
        Ok(Self {
            record_id,
            datanet_id,
            contributor,
            signature,
            license,
            created_at_ms,
            version,
            supersedes,
            quality,
            status,
            content,
            text_span,
            sequence,
            first_chunk_id,
            chunk_count,
            signature_scheme: extension.scheme,
            act: extension.act,
        })
    }

    fn utf8(&self, what: &str, bytes: &'a [u8]) -> Result<&'a str> {
        std::str::from_utf8(bytes).map_err(|e| StorageError::Corruption {
            cf: crate::keys::CF_RECORDS,
            key: hex::encode(self.record_id.0),
            reason: format!("{what} is not UTF-8: {e}"),
        })
    }

    /// The canonical JSON content.
    pub fn content(&self) -> Result<&'a str> {
        self.utf8("content", self.content)
    }

    /// The license.
    pub fn license(&self) -> Result<&'a str> {
        self.utf8("license", self.license)
    }

    /// Whether the license is `license` (no UTF-8 check needed to compare).
    pub fn license_is(&self, license: &str) -> bool {
        self.license == license.as_bytes()
    }

    /// The inside of the text column's JSON literal when the span is quoted at both ends;
    /// `None` without text or when the span is not so (the checked path then says why).
    fn text_inner(&self) -> Option<&'a [u8]> {
        let (start, end) = self.text_span?;
        let bytes = self.content.get(start as usize..end as usize)?;
        (bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"')
            .then(|| &bytes[1..bytes.len() - 1])
    }

    /// The text column's value, borrowed from the content when its JSON literal has no escape
    /// (the common case), unescaped into a new string otherwise; `None` without text.
    pub fn text(&self) -> Result<Option<Cow<'a, str>>> {
        // A JSON string literal without `\` is its own value; serde_json would return the same
        // characters. Stored content is canonical JSON, which escapes control characters, so a
        // literal holds none raw; a raw `"` would mean the span is not one literal, and takes
        // the checked path below. One pass finds both and whether the text is ASCII (most are),
        // which is valid UTF-8; only other texts have their UTF-8 checked.
        if let Some(inner) = self.text_inner() {
            let scan = provdb_kernels::text::scan(inner);
            if !scan.quote_or_backslash {
                if scan.ascii {
                    // SAFETY: every byte of `inner` was just checked to be below 0x80, and
                    // ASCII is valid UTF-8.
                    let text = unsafe { std::str::from_utf8_unchecked(inner) };
                    return Ok(Some(Cow::Borrowed(text)));
                }
                if let Ok(text) = std::str::from_utf8(inner) {
                    return Ok(Some(Cow::Borrowed(text)));
                }
            }
        }
        self.text_checked()
    }

    /// [`RecordView::text`] the slow way: only this literal (not the whole content) is checked
    /// for UTF-8 and unescaped.
    fn text_checked(&self) -> Result<Option<Cow<'a, str>>> {
        let Some((start, end)) = self.text_span else {
            return Ok(None);
        };
        let bytes = self
            .content
            .get(start as usize..end as usize)
            .unwrap_or_default();
        unescape_literal(self.utf8("text", bytes)?)
            .map(Some)
            .ok_or_else(|| bad_text_span((start, end)))
    }

    /// Appends the text column's value ([`RecordView::text`]) to `out` as UTF-8 and returns
    /// true; false, appending nothing, without text. A literal without escapes is copied and
    /// checked in one pass; on an error `out` is left as it was.
    pub fn append_text(&self, out: &mut Vec<u8>) -> Result<bool> {
        if let Some(inner) = self.text_inner() {
            let before = out.len();
            let scan = provdb_kernels::text::copy_scan(inner, out);
            if !scan.quote_or_backslash
                && (scan.ascii || std::str::from_utf8(&out[before..]).is_ok())
            {
                return Ok(true);
            }
            out.truncate(before);
        }
        let text = self.text_checked()?;
        if let Some(text) = &text {
            out.extend_from_slice(text.as_bytes());
        }
        Ok(text.is_some())
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
            license: self.license.as_bytes(),
            created_at_ms: self.created_at_ms,
            version: self.version,
            supersedes: self.supersedes,
            quality: self.quality,
            status: self.status,
            content: self.content.as_bytes(),
            text_span: self.text_span,
            sequence: self.sequence,
            first_chunk_id: self.first_chunk_id,
            chunk_count: self.chunk_ranges.len() as u32,
            signature_scheme: self.signature_scheme,
            act: self.act,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::acts::ActingRole;
    use crate::codec::encode_record as encode;

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
            signature_scheme: Some(SignatureScheme::Eip712),
            act: Some(VersionAct {
                by: Address([5; 20]),
                role: ActingRole::Curator,
            }),
        }
    }

    proptest! {
        #[test]
        fn a_stored_record_decodes_as_its_view(
            text in ".*", signature in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
            quality in proptest::option::of(any::<f32>()), ranges in 0usize..300, seq in any::<u64>(),
            created_at in any::<i64>(), version in any::<u32>(), datanet in any::<u32>(),
            status in 0usize..5, supersedes in proptest::option::of(any::<[u8; 32]>()),
            first_chunk in any::<u64>(), license in ".{0,20}",
        ) {
            let literal = serde_json::to_string(&text).unwrap();
            let content = format!("{{\"text\":{literal}}}");
            let span = Some((8, 8 + literal.len() as u32));
            let mut stored = record(content, span, ranges);
            stored.signature_scheme = signature.as_ref().map(|_| SignatureScheme::Eip191);
            stored.signature = signature;
            stored.quality = quality.filter(|q| !q.is_nan());
            stored.sequence = seq;
            stored.created_at_ms = created_at;
            stored.version = version;
            stored.datanet_id = datanet;
            stored.status = [Status::Pending, Status::Approved, Status::Rejected, Status::Slashed, Status::Tombstoned][status];
            stored.supersedes = supersedes.map(RecordId);
            stored.first_chunk_id = first_chunk;
            stored.license = license;
            let bytes = encode(&stored).unwrap();
            let view = RecordView::decode("records", b"k", &bytes).unwrap();
            prop_assert_eq!(view, stored.view());
            prop_assert_eq!(view.chunk_count as usize, ranges);
            prop_assert_eq!(view.content().unwrap(), stored.content.as_str());
            prop_assert_eq!(view.license().unwrap(), stored.license.as_str());
            let read = view.text().unwrap();
            prop_assert_eq!(read.as_deref(), Some(text.as_str()));
            prop_assert_eq!(view.text().unwrap().map(Cow::into_owned), stored.text().unwrap());
            let mut out = b"before".to_vec();
            prop_assert!(view.append_text(&mut out).unwrap());
            prop_assert_eq!(&out[..6], b"before");
            prop_assert_eq!(&out[6..], text.as_bytes());
        }

        #[test]
        fn garbage_is_corruption_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            match RecordView::decode("records", b"k", &bytes) {
                Err(e) => prop_assert!(matches!(e, StorageError::Corruption { .. }), "{e}"),
                // Whatever a damaged value's text is, what is appended is UTF-8 and a failure
                // appends nothing.
                Ok(view) => {
                    let mut out = b"x".to_vec();
                    match view.append_text(&mut out) {
                        Ok(true) => prop_assert!(std::str::from_utf8(&out).is_ok()),
                        Ok(false) | Err(_) => prop_assert_eq!(&out[..], b"x"),
                    }
                }
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
        let mut out = Vec::new();
        assert!(escaped.view().append_text(&mut out).unwrap());
        assert!(
            !record("{}".into(), None, 0)
                .view()
                .append_text(&mut out)
                .unwrap()
        );
        assert!(bad.view().append_text(&mut out).is_err());
        assert!(plain.view().append_text(&mut out).unwrap());
        assert_eq!(out, "a \"b\"\ncafé au lait".as_bytes());
    }

    #[test]
    fn a_text_that_is_not_utf8_is_corruption_and_appends_nothing() {
        let content = r#"{"text":"caf__"}"#;
        let stored = record(content.into(), Some((8, content.len() as u32 - 1)), 0);
        let mut bytes = encode(&stored).unwrap();
        let at = bytes.windows(2).position(|w| w == b"__").unwrap();
        bytes[at..at + 2].copy_from_slice(&[0xc3, 0x28]);
        let view = RecordView::decode("records", b"k", &bytes).unwrap();
        let mut out = b"kept".to_vec();
        assert!(matches!(
            view.append_text(&mut out),
            Err(StorageError::Corruption { .. })
        ));
        assert_eq!(out, b"kept");
    }
}
