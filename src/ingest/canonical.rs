//! The canonical form of a record's content, whose keccak256 is its record id.
//!
//! Canonical JSON here is: the record's own columns (provenance columns removed, null values
//! dropped) as one JSON object, keys sorted by their UTF-8 bytes at every depth, no whitespace,
//! strings escaped as serde_json escapes them (only `"`, `\` and control characters; non-ASCII
//! is written as UTF-8), numbers as serde_json writes them (integers as digits, floats in their
//! shortest round-trip form). In Python, for content of strings and integers:
//! `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.

use serde_json::{Map, Value};

/// Appends the canonical JSON of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    write_value(value, &mut bytes);
    *out = into_string(bytes);
}

/// The canonical JSON of an object.
pub fn canonical_object(map: &Map<String, Value>) -> String {
    canonical_object_with_span(map, "").0
}

/// The canonical JSON of an object, and the byte range of the top-level `key`'s value in it.
pub fn canonical_object_with_span(
    map: &Map<String, Value>,
    key: &str,
) -> (String, Option<(u32, u32)>) {
    canonical_object_with_literal(map, &[], key)
}

/// A top-level member given as its key and its value's JSON text, already canonical (a string
/// literal without escapes or a short integer, as serde_json writes them).
#[derive(Clone, Copy)]
pub(crate) struct CanonicalMember<'a> {
    pub(crate) key: &'a str,
    pub(crate) literal: &'a str,
}

/// `canonical_object_with_span` of `map` with `members` added (their keys must not be in
/// `map`).
pub(crate) fn canonical_object_with_literal(
    map: &Map<String, Value>,
    members: &[CanonicalMember<'_>],
    span_key: &str,
) -> (String, Option<(u32, u32)>) {
    // Sized up front: growing a large record's buffer would copy it several times.
    let estimate: usize = map
        .iter()
        .map(|(k, v)| k.len() + 4 + v.as_str().map_or(24, |s| s.len() + s.len() / 16 + 2))
        .sum::<usize>()
        + members
            .iter()
            .map(|m| m.key.len() + m.literal.len() + 4)
            .sum::<usize>();
    let mut out = Vec::with_capacity(estimate + 2);
    let span = write_object(map, members, &mut out, span_key);
    (into_string(out), span)
}

/// A member's value: to be written canonically, or already canonical text.
enum Member<'a> {
    Value(&'a Value),
    Literal(&'a str),
}

fn into_string(bytes: Vec<u8>) -> String {
    // Only serde_json's output and ASCII punctuation were written: valid UTF-8 by construction,
    // so this check cannot fail; it stays a check rather than an `unsafe` conversion.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_json(value: &(impl serde::Serialize + ?Sized), out: &mut Vec<u8>) {
    // Writing strings, numbers and booleans into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            write_object(map, &[], out, "");
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// Writes `map` (with `members` added) with its keys sorted; returns the byte range of
/// `span_key`'s value.
fn write_object(
    map: &Map<String, Value>,
    members: &[CanonicalMember<'_>],
    out: &mut Vec<u8>,
    span_key: &str,
) -> Option<(u32, u32)> {
    let mut entries: Vec<(&str, Member<'_>)> = map
        .iter()
        .map(|(k, v)| (k.as_str(), Member::Value(v)))
        .chain(members.iter().map(|m| (m.key, Member::Literal(m.literal))))
        .collect();
    let mut span = None;
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(*key, out);
        out.push(b':');
        let start = out.len();
        match value {
            Member::Value(value) => write_value(value, out),
            Member::Literal(literal) => out.extend_from_slice(literal.as_bytes()),
        }
        if !span_key.is_empty() && *key == span_key {
            span = Some((start as u32, out.len() as u32));
        }
    }
    out.push(b'}');
    span
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn sorts_keys_at_every_depth_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"z": [1, {"y": "é\n", "x": null}], "c": true}});
        let mut out = String::new();
        write_canonical(&value, &mut out);
        assert_eq!(
            out,
            r#"{"a":{"c":true,"z":[1,{"x":null,"y":"é\n"}]},"b":1}"#
        );
    }

    #[test]
    fn the_span_points_at_the_value_of_the_key() {
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"z": 1, "text": "a \"quoted\" é", "a": true}"#).unwrap();
        let (content, span) = canonical_object_with_span(&map, "text");
        let (start, end) = span.unwrap();
        let literal = &content[start as usize..end as usize];
        assert_eq!(
            serde_json::from_str::<String>(literal).unwrap(),
            "a \"quoted\" é"
        );
        assert_eq!(canonical_object_with_span(&map, "missing").1, None);
    }

    #[test]
    fn a_literal_member_is_placed_in_key_order_like_a_value() {
        let map: Map<String, Value> = serde_json::from_str(r#"{"z": 1, "a": [true]}"#).unwrap();
        let member = CanonicalMember {
            key: "text",
            literal: r#""plain é text""#,
        };
        let (content, span) = canonical_object_with_literal(&map, &[member], "text");
        let mut whole = map.clone();
        whole.insert("text".into(), Value::String("plain é text".into()));
        assert_eq!(content, canonical_object(&whole));
        let (start, end) = span.unwrap();
        assert_eq!(&content[start as usize..end as usize], member.literal);
    }

    proptest! {
        #[test]
        fn canonical_form_is_stable_under_reparsing(map in proptest::collection::btree_map("[a-zA-Z_é]{0,8}", "\\PC{0,20}", 0..8)) {
            let object: Map<String, Value> = map.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let first = canonical_object(&object);
            let reparsed: Map<String, Value> = serde_json::from_str(&first).unwrap();
            prop_assert_eq!(canonical_object(&reparsed), first);
        }
    }
}
