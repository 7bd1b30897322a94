//! Turns input rows into validated `NewRecord`s: provenance columns taken out, the rest checked
//! against the Datanet's schema and put in canonical form, the text chunked (`prepare`, one row
//! at a time); then hashed many at a time and each signature verified against its id and the
//! provenance it covers (`hash_rows`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use provdb_storage::{Address, ColumnKind, Datanet, NewChunk, NewRecord, RecordId, UnhashedRecord};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::canonical::{CanonicalMember, canonical_object_with_literal};
use super::chunk::chunk_text;
use super::signature::{SignedFields, verify_signature};

/// Input columns that carry provenance instead of content. They are not hashed.
pub const PROVENANCE_COLUMNS: [&str; 7] = [
    "contributor",
    "signature",
    "license",
    "created_at",
    "supersedes",
    "quality",
    "record_id",
];

/// Provenance columns read as strings (`take_string`); the others are numbers, possibly
/// written as text.
const STRING_PROVENANCE: [&str; 5] = [
    "contributor",
    "signature",
    "license",
    "supersedes",
    "record_id",
];

/// Why a row was refused: the column at fault (if one is) and the reason.
#[derive(Debug)]
pub(crate) struct RowError {
    pub(crate) column: Option<String>,
    pub(crate) reason: String,
}

fn column_error(column: &str, reason: impl Into<String>) -> RowError {
    RowError {
        column: Some(column.to_string()),
        reason: reason.into(),
    }
}

/// What a row is checked against, besides its own fields.
pub(crate) struct RowContext<'a> {
    pub(crate) datanet: &'a Datanet,
    pub(crate) default_contributor: Option<Address>,
    pub(crate) unsigned_only_from: Option<Address>,
    pub(crate) now_ms: i64,
}

/// A provenance column's string: from the string literals kept aside for provenance (see
/// `prepare_json_line`), or taken out of `fields`.
fn take_string<'a>(
    fields: &mut Map<String, Value>,
    provenance: &[CanonicalMember<'a>],
    column: &str,
) -> Result<Option<Cow<'a, str>>, RowError> {
    if let Some(member) = provenance.iter().find(|m| m.key == column) {
        return Ok(Some(Cow::Borrowed(
            &member.literal[1..member.literal.len() - 1],
        )));
    }
    match fields.remove(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Cow::Owned(s))),
        Some(other) => Err(column_error(
            column,
            format!("expected a string, found {other}"),
        )),
    }
}

/// Validates and prepares one JSONL line. Members whose JSON text is already canonical (a
/// string literal without escapes, an integer of at most 18 digits) are not parsed into values:
/// their text goes into the content as it is, and the text column, the bulk of a line, is
/// chunked in place and copied once. Provenance columns and other values are parsed. Lines
/// whose keys have escapes, or that are not an object, are read as a whole JSON value.
pub(crate) fn prepare_json_line(
    line: &str,
    context: &RowContext<'_>,
) -> Result<PreparedRow, RowError> {
    let Ok(members) = serde_json::from_str::<BTreeMap<&str, &RawValue>>(line) else {
        return super::source::parse_object(line)
            .map_err(|reason| RowError {
                column: None,
                reason,
            })
            .and_then(|fields| prepare(fields, &[], &[], context));
    };
    let mut fields = Map::new();
    let mut literals = Vec::with_capacity(members.len());
    let mut provenance = Vec::new();
    for (key, raw) in members {
        let text = raw.get();
        let kind = literal_kind(text);
        let member = CanonicalMember { key, literal: text };
        if !PROVENANCE_COLUMNS.contains(&key) && kind.is_some() {
            literals.push(member);
            continue;
        }
        if kind == Some(ColumnKind::String) && STRING_PROVENANCE.contains(&key) {
            provenance.push(member);
            continue;
        }
        // The parse above checked this text is JSON; parsing it again cannot fail.
        let value = serde_json::from_str(text).map_err(|e| column_error(key, e.to_string()))?;
        fields.insert(key.to_string(), value);
    }
    prepare(fields, &literals, &provenance, context)
}

/// What a member's JSON text is when it is already canonical, as serde_json would write its
/// value: a string literal without escapes (a parsed literal has no control character), or an
/// integer of at most 18 digits (no `-0`: serde_json would not write that).
fn literal_kind(literal: &str) -> Option<ColumnKind> {
    let bytes = literal.as_bytes();
    if bytes.len() >= 2 && bytes[0] == b'"' {
        return memchr::memchr(b'\\', bytes)
            .is_none()
            .then_some(ColumnKind::String);
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical_integer = (1..=18).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && digits.len() == bytes.len()));
    canonical_integer.then_some(ColumnKind::Int)
}

/// The kind of a member kept as text, which `literal_kind` already found canonical (a string
/// or an integer): its first byte tells which, without scanning the text again.
fn kept_kind(literal: &str) -> ColumnKind {
    if literal.starts_with('"') {
        ColumnKind::String
    } else {
        ColumnKind::Int
    }
}

/// Validates and prepares one row: its parsed fields, members kept as their canonical JSON
/// text, and provenance columns kept as string literals (see `prepare_json_line`; none of
/// their keys is in `fields`).
pub(crate) fn prepare(
    mut fields: Map<String, Value>,
    literals: &[CanonicalMember<'_>],
    provenance: &[CanonicalMember<'_>],
    context: &RowContext<'_>,
) -> Result<PreparedRow, RowError> {
    let datanet = context.datanet;
    let contributor = match take_string(&mut fields, provenance, "contributor")? {
        Some(text) => text
            .parse::<Address>()
            .map_err(|e| column_error("contributor", e.to_string()))?,
        None => context.default_contributor.ok_or_else(|| {
            column_error(
                "contributor",
                "missing: give a contributor column or --contributor ADDR",
            )
        })?,
    };
    let signature_hex = take_string(&mut fields, provenance, "signature")?.map(Cow::into_owned);
    let license = take_string(&mut fields, provenance, "license")?
        .map_or_else(|| datanet.license.clone(), Cow::into_owned);
    // CSV has no types: a provenance number may come as its text.
    let created_at = fields.remove("created_at");
    let created_at_given = !matches!(created_at, None | Some(Value::Null));
    let created_at_ms = match created_at {
        None | Some(Value::Null) => context.now_ms,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| column_error("created_at", "expected integer milliseconds"))?,
        Some(Value::String(text)) => text.trim().parse::<i64>().map_err(|_| {
            column_error(
                "created_at",
                format!("expected integer milliseconds, found \"{text}\""),
            )
        })?,
        Some(other) => {
            return Err(column_error(
                "created_at",
                format!("expected integer milliseconds, found {other}"),
            ));
        }
    };
    let supersedes = take_string(&mut fields, provenance, "supersedes")?
        .map(|text| {
            text.parse::<RecordId>()
                .map_err(|e| column_error("supersedes", e.to_string()))
        })
        .transpose()?;
    let quality = match fields.remove("quality") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(q) if (0.0..=1.0).contains(&q) => Some(q as f32),
            _ => return Err(column_error("quality", format!("{n} is not in 0..1"))),
        },
        Some(Value::String(text)) => match text.trim().parse::<f64>() {
            Ok(q) if (0.0..=1.0).contains(&q) => Some(q as f32),
            _ => {
                return Err(column_error(
                    "quality",
                    format!("\"{text}\" is not a number in 0..1"),
                ));
            }
        },
        Some(other) => {
            return Err(column_error(
                "quality",
                format!("expected a number in 0..1, found {other}"),
            ));
        }
    };
    let claimed_id = take_string(&mut fields, provenance, "record_id")?.map(Cow::into_owned);
    fields.retain(|_, value| !value.is_null());
    let text_column = datanet.text_column.as_str();
    check_schema(&fields, literals, datanet)?;
    let text_literal = literals.iter().find(|m| m.key == text_column);
    let text = match (text_literal, fields.get(text_column)) {
        (Some(member), _) if kept_kind(member.literal) == ColumnKind::String => {
            &member.literal[1..member.literal.len() - 1]
        }
        (Some(member), _) => {
            return Err(column_error(
                text_column,
                format!("expected text, found {}", member.literal),
            ));
        }
        // An empty text is a record without chunks (Cranfield has two such documents).
        (None, Some(Value::String(text))) => text.as_str(),
        (None, Some(other)) => {
            return Err(column_error(
                text_column,
                format!("expected text, found {other}"),
            ));
        }
        (None, None) => return Err(column_error(text_column, "missing text column")),
    };
    let (content, text_span) = canonical_object_with_literal(&fields, literals, text_column);
    let chunks = chunk_text(text, datanet.chunking);
    Ok(PreparedRow {
        record: UnhashedRecord {
            content,
            text_span,
            contributor,
        },
        rest: Provenance {
            signature_hex,
            license,
            created_at_ms,
            created_at_given,
            supersedes,
            quality,
            claimed_id,
            chunks,
        },
    })
}

/// A row checked and in canonical form, not yet hashed: rows are hashed many at a time
/// ([`hash_rows`]).
pub(crate) struct PreparedRow {
    record: UnhashedRecord,
    rest: Provenance,
}

/// What a row's record gets once its id is known, and what is checked against the id.
struct Provenance {
    signature_hex: Option<String>,
    license: String,
    created_at_ms: i64,
    /// Whether the row gave `created_at` (else it is the time of ingest).
    created_at_given: bool,
    supersedes: Option<RecordId>,
    quality: Option<f32>,
    claimed_id: Option<String>,
    chunks: Vec<NewChunk>,
}

/// Hashes prepared rows together (see `NewRecord::new_many`) and finishes each: the claimed
/// id and the signature checked against its id. Refused rows stay refused, in place.
pub(crate) fn hash_rows(
    rows: Vec<Result<PreparedRow, RowError>>,
    context: &RowContext<'_>,
) -> Vec<Result<NewRecord, RowError>> {
    let mut parts = Vec::with_capacity(rows.len());
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        match row {
            Ok(row) => {
                parts.push(row.record);
                outcomes.push(Ok(row.rest));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    let mut records = NewRecord::new_many(parts).into_iter();
    outcomes
        .into_iter()
        .map(|outcome| {
            let rest = outcome?;
            let record = records.next().ok_or_else(|| RowError {
                column: None,
                reason: "internal: a prepared row lost its record".into(),
            })?;
            finish(record, rest, context)
        })
        .collect()
}

/// Sets a hashed record's provenance, checking the claimed id and the signature against it.
fn finish(
    mut record: NewRecord,
    rest: Provenance,
    context: &RowContext<'_>,
) -> Result<NewRecord, RowError> {
    let datanet = context.datanet;
    let contributor = record.contributor;
    let record_id = record.record_id();
    if let Some(claimed) = &rest.claimed_id
        && !claimed.eq_ignore_ascii_case(&record_id.to_string())
    {
        return Err(column_error(
            "record_id",
            format!("given {claimed}, but the content hashes to {record_id}"),
        ));
    }
    let signature = match &rest.signature_hex {
        Some(hex) => {
            let fields = SignedFields {
                datanet: &datanet.name,
                chain_id: datanet.signatures.chain_id,
                record_id,
                license: &rest.license,
                created_at_ms: rest.created_at_ms,
                supersedes: rest.supersedes,
            };
            let (bytes, scheme) = verify_signature(
                &fields,
                rest.created_at_given,
                hex,
                &contributor,
                &datanet.signatures,
            )
            .map_err(|e| column_error("signature", e))?;
            record.signature_scheme = Some(scheme);
            Some(bytes)
        }
        None if datanet.require_signatures => {
            return Err(column_error(
                "signature",
                "missing: this datanet requires signed records",
            ));
        }
        None => match context.unsigned_only_from {
            Some(uploader) if uploader != contributor => {
                return Err(column_error(
                    "contributor",
                    format!(
                        "an unsigned row must be contributed by the uploader {uploader}; \
                         sign it with {contributor}'s key to upload it on their behalf"
                    ),
                ));
            }
            _ => None,
        },
    };
    record.signature = signature;
    record.license = rest.license;
    record.created_at_ms = rest.created_at_ms;
    record.supersedes = rest.supersedes;
    record.quality = rest.quality;
    record
        .set_chunks(rest.chunks)
        .map_err(|e| column_error(&datanet.text_column, e.to_string()))?;
    Ok(record)
}

/// Checks the fields and the members kept as canonical text against the Datanet's schema.
fn check_schema(
    fields: &Map<String, Value>,
    literals: &[CanonicalMember<'_>],
    datanet: &Datanet,
) -> Result<(), RowError> {
    let Some(schema) = &datanet.schema else {
        return Ok(());
    };
    for column in schema {
        let literal = literals.iter().find(|m| m.key == column.name);
        let (ok, found) = match (fields.get(&column.name), literal) {
            (Some(value), _) => {
                let ok = match column.kind {
                    ColumnKind::String => value.is_string(),
                    ColumnKind::Int => value.is_i64() || value.is_u64(),
                    ColumnKind::Float => value.is_number(),
                    ColumnKind::Bool => value.is_boolean(),
                };
                (ok, value.to_string())
            }
            (None, Some(member)) => {
                let kind = kept_kind(member.literal);
                let ok = kind == column.kind
                    || (column.kind == ColumnKind::Float && kind == ColumnKind::Int);
                (ok, member.literal.to_string())
            }
            (None, None) if column.required => {
                return Err(column_error(&column.name, "missing required column"));
            }
            (None, None) => (true, String::new()),
        };
        if !ok {
            return Err(column_error(
                &column.name,
                format!("expected {}, found {found}", column.kind.as_str()),
            ));
        }
    }
    // The first unknown column in key order.
    if let Some(unknown) = fields
        .keys()
        .map(String::as_str)
        .chain(literals.iter().map(|m| m.key))
        .filter(|key| !schema.iter().any(|c| c.name == *key))
        .min()
    {
        let known: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        return Err(column_error(
            unknown,
            format!("not in the datanet's schema ({})", known.join(", ")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// One row through `hash_rows`.
    fn hashed(
        row: Result<PreparedRow, RowError>,
        context: &RowContext<'_>,
    ) -> Result<NewRecord, RowError> {
        let mut records = hash_rows(vec![row], context);
        assert_eq!(records.len(), 1);
        records.remove(0)
    }

    fn context(datanet: &Datanet) -> RowContext<'_> {
        RowContext {
            datanet,
            default_contributor: "0x00000000000000000000000000000000000000a1".parse().ok(),
            unsigned_only_from: None,
            now_ms: 1,
        }
    }

    /// `text` as a JSON literal that escapes every character (`\uXXXX`, surrogate pairs
    /// beyond the BMP): the same string, written the long way.
    fn escaped_literal(text: &str) -> String {
        let units: String = text.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
        format!("\"{units}\"")
    }

    proptest! {
        /// The borrowed JSONL path gives exactly the record of the whole-value path, whether
        /// the text is written plainly (borrowed) or with escapes (parsed).
        #[test]
        fn a_line_prepares_as_its_parsed_object_does(
            text in "\\PC{0,300}",
            title in "\\PC{0,20}",
            number in any::<i64>(),
            escape_text in any::<bool>(),
            escape_key in any::<bool>(),
        ) {
            let datanet = Datanet::new("d");
            let context = context(&datanet);
            let literal = if escape_text {
                escaped_literal(&text)
            } else {
                serde_json::to_string(&text).unwrap()
            };
            let title_key = if escape_key { "\\u0074itle" } else { "title" };
            let nested = json!({"b": [1, "x\n"], "a": null});
            let line = format!(
                r#"{{"n": {number}, "text": {literal}, "{title_key}": {}, "nested": {nested}, "quality": 0.5}}"#,
                serde_json::to_string(&title).unwrap()
            );
            let fast = hashed(prepare_json_line(&line, &context), &context).unwrap();
            let slow = prepare(super::super::source::parse_object(&line).unwrap(), &[], &[], &context);
            let slow = hashed(slow, &context).unwrap();
            prop_assert_eq!(fast.content(), slow.content());
            prop_assert_eq!(fast.record_id(), slow.record_id());
            prop_assert_eq!(fast.text_span(), slow.text_span());
            prop_assert_eq!(fast.chunks(), slow.chunks());
            prop_assert_eq!(fast.quality, Some(0.5));
        }
    }

    /// Numbers at the edges of what is kept as text: each line gives the content and id of
    /// the whole-value path.
    #[test]
    fn integers_kept_as_text_are_the_ones_serde_json_writes_alike() {
        let datanet = Datanet::new("d");
        let context = context(&datanet);
        for number in [
            "0",
            "-0",
            "-1",
            "7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "-9223372036854775808",
            "1.50",
            "1e3",
            "-0.0",
        ] {
            // Provenance columns as plain strings (kept aside), one escaped, one a number as
            // text: each read as the whole-value path reads it.
            let provenance = r#""contributor":"0x00000000000000000000000000000000000000b2","license":"cc\u002dby","created_at":"77""#;
            let line =
                format!(r#"{{"n":{number},"m":[{number}],"text":"t","title":"a b",{provenance}}}"#);
            let fast = hashed(prepare_json_line(&line, &context), &context).unwrap();
            let slow = prepare(
                super::super::source::parse_object(&line).unwrap(),
                &[],
                &[],
                &context,
            );
            let slow = hashed(slow, &context).unwrap();
            assert_eq!(fast.content(), slow.content(), "{number}");
            assert_eq!(fast.record_id(), slow.record_id(), "{number}");
            assert_eq!(fast.contributor, slow.contributor);
            assert_eq!(fast.contributor.0[19], 0xb2);
            assert_eq!((fast.license.as_str(), fast.created_at_ms), ("cc-by", 77));
            assert_eq!((slow.license.as_str(), slow.created_at_ms), ("cc-by", 77));
        }
    }

    #[test]
    fn members_kept_as_text_are_checked_against_the_schema() {
        let mut datanet = Datanet::new("d");
        let column = |name: &str, kind| provdb_storage::ColumnSpec {
            name: name.into(),
            kind,
            required: true,
        };
        datanet.schema = Some(vec![
            column("text", ColumnKind::String),
            column("n", ColumnKind::Int),
            column("x", ColumnKind::Float),
        ]);
        let context = context(&datanet);
        assert!(prepare_json_line(r#"{"text": "t", "n": 5, "x": 2}"#, &context).is_ok());
        assert!(prepare_json_line(r#"{"text": "t", "n": 5, "x": 2.5}"#, &context).is_ok());
        let error = prepare_json_line(r#"{"text": "t", "n": "5", "x": 2}"#, &context)
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("n"));
        assert_eq!(error.reason, r#"expected int, found "5""#);
        let error = prepare_json_line(r#"{"text": 4, "n": 5, "x": 2}"#, &context)
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("text"));
        assert_eq!(error.reason, "expected string, found 4");
        let error = prepare_json_line(r#"{"text": "t", "x": 2}"#, &context)
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("n"));
        let mut loose = Datanet::new("d");
        loose.text_column = "body".into();
        let error = prepare_json_line(r#"{"body": 12}"#, &self::context(&loose))
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("body"));
        assert_eq!(error.reason, "expected text, found 12");
    }

    #[test]
    fn a_plain_text_column_is_checked_against_the_schema() {
        let mut datanet = Datanet::new("d");
        datanet.schema = Some(vec![provdb_storage::ColumnSpec {
            name: "title".into(),
            kind: ColumnKind::String,
            required: true,
        }]);
        let context = context(&datanet);
        let error = prepare_json_line(r#"{"title": "t", "text": "plain"}"#, &context)
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("text"));
        assert!(
            error.reason.contains("not in the datanet's schema"),
            "{}",
            error.reason
        );
        let error = prepare_json_line(r#"{"text": "plain"}"#, &context)
            .err()
            .unwrap();
        assert_eq!(error.column.as_deref(), Some("title"));
    }
}
