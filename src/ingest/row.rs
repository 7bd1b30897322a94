//! Turns one input row into a validated `NewRecord`: provenance columns taken out, the rest
//! checked against the Datanet's schema, hashed in canonical form, the signature verified, the
//! text chunked.

use provdb_storage::{Address, ColumnKind, Datanet, NewRecord, RecordId};
use serde_json::{Map, Value};

use super::canonical::canonical_object_with_span;
use super::chunk::chunk_text;
use super::signature::verify_signature;

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

fn take_string(fields: &mut Map<String, Value>, column: &str) -> Result<Option<String>, RowError> {
    match fields.remove(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(column_error(
            column,
            format!("expected a string, found {other}"),
        )),
    }
}

/// Validates and prepares one row.
pub(crate) fn prepare(
    mut fields: Map<String, Value>,
    context: &RowContext<'_>,
) -> Result<NewRecord, RowError> {
    let datanet = context.datanet;
    let contributor = match take_string(&mut fields, "contributor")? {
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
    let signature_hex = take_string(&mut fields, "signature")?;
    let license = take_string(&mut fields, "license")?.unwrap_or_else(|| datanet.license.clone());
    // CSV has no types: a provenance number may come as its text.
    let created_at_ms = match fields.remove("created_at") {
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
    let supersedes = take_string(&mut fields, "supersedes")?
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
    let claimed_id = take_string(&mut fields, "record_id")?;
    fields.retain(|_, value| !value.is_null());
    check_schema(&fields, datanet)?;
    let text = match fields.get(&datanet.text_column) {
        // An empty text is a record without chunks (Cranfield has two such documents).
        Some(Value::String(text)) => text.clone(),
        Some(other) => {
            return Err(column_error(
                &datanet.text_column,
                format!("expected text, found {other}"),
            ));
        }
        None => return Err(column_error(&datanet.text_column, "missing text column")),
    };
    let (content, text_span) = canonical_object_with_span(&fields, &datanet.text_column);
    let mut record = NewRecord::new(content, text_span, contributor);
    let record_id = record.record_id();
    if let Some(claimed) = claimed_id
        && !claimed.eq_ignore_ascii_case(&record_id.to_string())
    {
        return Err(column_error(
            "record_id",
            format!("given {claimed}, but the content hashes to {record_id}"),
        ));
    }
    let signature = match signature_hex {
        Some(hex) => Some(
            verify_signature(&record_id, &hex, &contributor)
                .map_err(|e| column_error("signature", e))?,
        ),
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
    record.license = license;
    record.created_at_ms = created_at_ms;
    record.supersedes = supersedes;
    record.quality = quality;
    record
        .set_chunks(chunk_text(&text, datanet.chunking))
        .map_err(|e| column_error(&datanet.text_column, e.to_string()))?;
    Ok(record)
}

fn check_schema(fields: &Map<String, Value>, datanet: &Datanet) -> Result<(), RowError> {
    let Some(schema) = &datanet.schema else {
        return Ok(());
    };
    for column in schema {
        match fields.get(&column.name) {
            None if column.required => {
                return Err(column_error(&column.name, "missing required column"));
            }
            None => {}
            Some(value) => {
                let ok = match column.kind {
                    ColumnKind::String => value.is_string(),
                    ColumnKind::Int => value.is_i64() || value.is_u64(),
                    ColumnKind::Float => value.is_number(),
                    ColumnKind::Bool => value.is_boolean(),
                };
                if !ok {
                    return Err(column_error(
                        &column.name,
                        format!("expected {}, found {value}", column.kind.as_str()),
                    ));
                }
            }
        }
    }
    if let Some(unknown) = fields
        .keys()
        .find(|key| !schema.iter().any(|c| &c.name == *key))
    {
        let known: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        return Err(column_error(
            unknown,
            format!("not in the datanet's schema ({})", known.join(", ")),
        ));
    }
    Ok(())
}
