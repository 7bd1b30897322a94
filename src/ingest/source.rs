//! Input readers: JSONL (serde_json, line by line, bounded), CSV and Parquet (arrow's readers),
//! and Arrow batches. Each yields rows as JSON objects with their location; a row that cannot
//! be read is reported to the sink with its reason, a file that cannot be read at all is an
//! error. Every reader counts what it decodes against the input's limits (`limits`) as it
//! goes, so an input that decodes to more than allowed is refused before it is held whole.

mod limits;
mod parquet_file;
mod parquet_pages;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use provdb_storage::{ColumnKind, Datanet};
use serde_json::{Map, Number, Value};

use crate::error::{Error, Location, Result};
pub(crate) use limits::{Budget, InputLimits};
use limits::{ROW_SETTING, row_bytes};

/// One input row: its location and its fields, still as JSON text (parsed later, in
/// parallel), already as an object, or why it could not be read.
pub(crate) struct RawRow {
    pub(crate) location: Location,
    pub(crate) fields: RowData,
}

/// The fields of a row as the reader produced them.
pub(crate) enum RowData {
    /// A JSONL line, not parsed yet.
    Json(String),
    /// Fields read from a columnar format.
    Object(Map<String, Value>),
    /// Why the row could not be read.
    Unreadable(String),
}

impl RowData {
    /// The row as a JSON object, or why it is not one.
    pub(crate) fn into_object(self) -> Result<Map<String, Value>, String> {
        match self {
            Self::Json(text) => parse_object(&text),
            Self::Object(map) => Ok(map),
            Self::Unreadable(reason) => Err(reason),
        }
    }
}

/// A JSONL line as a JSON object, or why it is not one.
pub(crate) fn parse_object(line: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "expected a JSON object, found {}",
            json_kind(&other)
        )),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// Input formats, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Csv,
    Parquet,
}

impl Format {
    pub(crate) fn of(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("jsonl" | "ndjson" | "json") => Ok(Self::Jsonl),
            Some("csv") => Ok(Self::Csv),
            Some("parquet") => Ok(Self::Parquet),
            _ => Err(Error::Invalid(format!(
                "{}: unknown input format; use .jsonl, .csv or .parquet",
                path.display()
            ))),
        }
    }
}

/// Reads the file at `path` in `format` within `limits`, sending every row to `sink`.
pub(crate) fn read_file(
    format: Format,
    path: &Path,
    source_name: &str,
    datanet: &Datanet,
    limits: InputLimits,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
    let mut budget = Budget::new(limits, source_name);
    match format {
        Format::Jsonl => {
            let file = fs_err::File::open(path).map_err(Error::io(path))?;
            read_jsonl(file, source_name, &mut budget, sink)
        }
        Format::Csv => read_csv(path, source_name, datanet, &mut budget, sink),
        Format::Parquet => parquet_file::read_parquet(path, source_name, &mut budget, sink),
    }
}

fn whole(source_name: &str, reason: impl Into<String>) -> Error {
    Error::Input {
        source_name: source_name.into(),
        location: Location::Whole,
        column: None,
        reason: reason.into(),
    }
}

/// Reads a JSONL stream. Lines longer than the row limit are reported, never buffered whole.
pub(crate) fn read_jsonl(
    reader: impl Read,
    source_name: &str,
    budget: &mut Budget<'_>,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
    let max_line_bytes = budget.limits().row_bytes;
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        let (read, overflowed) = read_bounded_line(&mut reader, &mut line, max_line_bytes)
            .map_err(|e| whole(source_name, format!("read failed at line {number}: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        let location = Location::Line(number);
        if overflowed {
            // Counted at what was read (the line and its newline); the row is refused whatever
            // the budget says of it, as it was cut.
            budget.row(location, read as u64)?;
            let reason = format!(
                "the line is longer than the limit of {max_line_bytes} bytes per row ({ROW_SETTING})"
            );
            sink(RawRow {
                location,
                fields: RowData::Unreadable(reason),
            })?;
            continue;
        }
        // The line's buffer becomes the row (no copy); the next line gets a new one, sized
        // for a line like this one.
        let next = Vec::with_capacity(line.len() + line.len() / 2 + 64);
        let text = match String::from_utf8(std::mem::replace(&mut line, next)) {
            Ok(text) => text,
            Err(e) => {
                let reason = format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to());
                line = e.into_bytes();
                // A refused row is held too (in the rejects list with `skip_invalid`).
                budget.row(location, line.len() as u64)?;
                sink(RawRow {
                    location,
                    fields: RowData::Unreadable(reason),
                })?;
                continue;
            }
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        // Within the row limit: read_bounded_line kept it.
        budget.row(location, trimmed.len() as u64)?;
        let text = if trimmed.len() == text.len() {
            text
        } else {
            trimmed.to_string()
        };
        sink(RawRow {
            location,
            fields: RowData::Json(text),
        })?;
    }
}

/// Reads one line into `line` (without the newline), keeping at most `max` bytes; returns the
/// bytes consumed and whether the line was longer than `max`.
fn read_bounded_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut overflowed = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok((consumed, overflowed));
        }
        let (take, done) = match memchr::memchr(b'\n', buffer) {
            Some(i) => (i + 1, true),
            None => (buffer.len(), false),
        };
        let content = if done {
            &buffer[..take - 1]
        } else {
            &buffer[..take]
        };
        if !overflowed {
            if line.len() + content.len() > max {
                overflowed = true;
                line.clear();
            } else {
                line.extend_from_slice(content);
            }
        }
        reader.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, overflowed));
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The Arrow type a schema column is read as from CSV.
fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::String => DataType::Utf8,
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Float => DataType::Float64,
        ColumnKind::Bool => DataType::Boolean,
    }
}

/// Reads a CSV file with a header. Columns of the Datanet's schema are parsed as their type,
/// others as text. A missing required column, or a value that does not parse, fails the file.
fn read_csv(
    path: &Path,
    source_name: &str,
    datanet: &Datanet,
    budget: &mut Budget<'_>,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
    let mut file = BufReader::new(fs_err::File::open(path).map_err(Error::io(path))?);
    let mut header = String::new();
    file.read_line(&mut header)
        .map_err(|e| whole(source_name, format!("cannot read the header: {e}")))?;
    let header = header.trim_end_matches(['\r', '\n']);
    if header.is_empty() {
        return Err(whole(source_name, "empty file: no header and no records"));
    }
    let names = parse_header(header);
    let schema = datanet.schema.as_deref().unwrap_or(&[]);
    for column in schema
        .iter()
        .filter(|c| c.required)
        .map(|c| c.name.as_str())
        .chain([datanet.text_column.as_str()])
    {
        if !names.iter().any(|n| n == column) {
            return Err(Error::Input {
                source_name: source_name.into(),
                location: Location::Whole,
                column: Some(column.into()),
                reason: "missing column in the CSV header".into(),
            });
        }
    }
    let fields: Vec<Field> = names
        .iter()
        .map(|name| {
            let kind = schema
                .iter()
                .find(|c| &c.name == name)
                .map(|c| c.kind)
                .unwrap_or(ColumnKind::String);
            Field::new(name, arrow_type(kind), true)
        })
        .collect();
    let file = fs_err::File::open(path).map_err(Error::io(path))?;
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
        .with_header(true)
        .with_batch_size(8192)
        .build(file)
        .map_err(|e| whole(source_name, format!("cannot read CSV: {e}")))?;
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| whole(source_name, format!("invalid CSV: {e}")))?;
        row = batch_rows_within(&batch, row, budget, sink)?;
    }
    if row == 0 {
        return Err(whole(source_name, "no records in file"));
    }
    Ok(())
}

/// Splits a CSV header line into names (quotes removed), as the reader will see them.
fn parse_header(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => names.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    names.push(current);
    names
}

/// Sends every row of an Arrow batch to `sink`, numbering rows after `rows_before` and
/// counting each against `budget` before it is converted; returns the number of rows seen so
/// far. Null values are left out of the row.
pub(crate) fn batch_rows_within(
    batch: &RecordBatch,
    rows_before: u64,
    budget: &mut Budget<'_>,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<u64> {
    let schema = batch.schema();
    let unsupported = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .find(|(_, column)| !is_supported(column.data_type()))
        .map(|(field, column)| {
            format!(
                "column '{}' has type {} that provdb cannot ingest",
                field.name(),
                column.data_type()
            )
        });
    for (row, bytes) in row_bytes(batch).into_iter().enumerate() {
        let location = Location::Row(rows_before + row as u64 + 1);
        let over = budget.row(location, bytes)?;
        let fields = match over.or_else(|| unsupported.clone()) {
            Some(reason) => RowData::Unreadable(reason),
            None => row_object(batch, row),
        };
        sink(RawRow { location, fields })?;
    }
    Ok(rows_before + batch.num_rows() as u64)
}

/// Row `row` of `batch` as a JSON object, or why it cannot be one.
fn row_object(batch: &RecordBatch, row: usize) -> RowData {
    let schema = batch.schema();
    let mut map = Map::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if column.is_null(row) {
            continue;
        }
        match cell(column.as_ref(), row) {
            Ok(value) => {
                map.insert(field.name().clone(), value);
            }
            Err(reason) => {
                return RowData::Unreadable(format!("column '{}': {reason}", field.name()));
            }
        }
    }
    RowData::Object(map)
}

fn is_supported(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Null | Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Utf8
            | LargeUtf8
            | Utf8View
    )
}

fn float(value: f64) -> Result<Value, String> {
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or_else(|| format!("{value} is not a finite number"))
}

fn cell(column: &dyn Array, row: usize) -> Result<Value, String> {
    use DataType::*;
    Ok(match column.data_type() {
        Null => Value::Null,
        Boolean => Value::Bool(column.as_boolean().value(row)),
        Int8 => column.as_primitive::<Int8Type>().value(row).into(),
        Int16 => column.as_primitive::<Int16Type>().value(row).into(),
        Int32 => column.as_primitive::<Int32Type>().value(row).into(),
        Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        UInt8 => column.as_primitive::<UInt8Type>().value(row).into(),
        UInt16 => column.as_primitive::<UInt16Type>().value(row).into(),
        UInt32 => column.as_primitive::<UInt32Type>().value(row).into(),
        UInt64 => column.as_primitive::<UInt64Type>().value(row).into(),
        Float32 => float(f64::from(column.as_primitive::<Float32Type>().value(row)))?,
        Float64 => float(column.as_primitive::<Float64Type>().value(row))?,
        Utf8 => Value::String(column.as_string::<i32>().value(row).to_string()),
        LargeUtf8 => Value::String(column.as_string::<i64>().value(row).to_string()),
        Utf8View => Value::String(column.as_string_view().value(row).to_string()),
        other => return Err(format!("unsupported type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_never_buffer_an_overlong_line() {
        let input = format!("{{\"a\":1}}\n{}\n{{\"b\":2}}", "x".repeat(5000));
        let mut rows = Vec::new();
        let limits = InputLimits {
            row_bytes: 100,
            file_bytes: u64::MAX,
            rows: u64::MAX,
        };
        let mut budget = Budget::new(limits, "t");
        read_jsonl(input.as_bytes(), "t", &mut budget, &mut |row| {
            rows.push((row.location, row.fields.into_object().map(|m| m.len())));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], (Location::Line(1), Ok(1)));
        assert!(
            matches!(&rows[1], (Location::Line(2), Err(reason)) if reason.contains("longer than the limit of 100 bytes per row"))
        );
        assert_eq!(rows[2], (Location::Line(3), Ok(1)));
    }

    #[test]
    fn header_parsing_handles_quotes() {
        assert_eq!(parse_header(r#"a,"b,c","d""e""#), vec!["a", "b,c", "d\"e"]);
    }
}
