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
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // serde_json's Display of scalars is compact and escapes strings minimally.
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The canonical JSON of an object.
pub fn canonical_object(map: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    write_object(map, &mut out);
    out
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(value, out);
    }
    out.push('}');
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
