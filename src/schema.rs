//! Typed Datanet schemas as users write them:
//! `{"columns": [{"name": "title", "type": "string", "required": true}, ...]}` with types
//! `string`, `int`, `float` and `bool` (`required` defaults to false).

use provdb_storage::{ColumnKind, ColumnSpec};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::ingest::PROVENANCE_COLUMNS;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    columns: Vec<ColumnFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnFile {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    required: bool,
}

/// Parses a schema document.
pub fn parse_schema(json: &str) -> Result<Vec<ColumnSpec>> {
    let file: SchemaFile =
        serde_json::from_str(json).map_err(|e| Error::Invalid(format!("invalid schema: {e}")))?;
    if file.columns.is_empty() {
        return Err(Error::Invalid("invalid schema: no columns".into()));
    }
    let mut columns: Vec<ColumnSpec> = Vec::with_capacity(file.columns.len());
    for column in file.columns {
        let kind = match column.kind.as_str() {
            "string" => ColumnKind::String,
            "int" => ColumnKind::Int,
            "float" => ColumnKind::Float,
            "bool" => ColumnKind::Bool,
            other => {
                return Err(Error::Invalid(format!(
                    "invalid schema: column '{}' has unknown type '{other}' (string, int, float, bool)",
                    column.name
                )));
            }
        };
        if PROVENANCE_COLUMNS.contains(&column.name.as_str()) {
            return Err(Error::Invalid(format!(
                "invalid schema: '{}' is a provenance column",
                column.name
            )));
        }
        if columns.iter().any(|c| c.name == column.name) {
            return Err(Error::Invalid(format!(
                "invalid schema: column '{}' appears twice",
                column.name
            )));
        }
        columns.push(ColumnSpec {
            name: column.name,
            kind,
            required: column.required,
        });
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let columns = parse_schema(r#"{"columns":[{"name":"text","type":"string","required":true},{"name":"year","type":"int"}]}"#).unwrap();
        assert_eq!(
            columns[1],
            ColumnSpec {
                name: "year".into(),
                kind: ColumnKind::Int,
                required: false
            }
        );
        assert!(
            parse_schema(r#"{"columns":[{"name":"a","type":"date"}]}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown type")
        );
        assert!(parse_schema(r#"{"columns":[{"name":"signature","type":"string"}]}"#).is_err());
        assert!(parse_schema("{").is_err());
    }
}
