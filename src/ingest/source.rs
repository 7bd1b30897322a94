//! Input readers: JSONL (serde_json, line by line, bounded), CSV and Parquet (arrow's readers),
//! and Arrow batches. Each yields rows as JSON objects with their location; a row that cannot
//! be read is reported to the sink with its reason, a file that cannot be read at all is an
//! error.

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

fn whole(source_name: &str, reason: impl Into<String>) -> Error {
    Error::Input {
        source_name: source_name.into(),
        location: Location::Whole,
        column: None,
        reason: reason.into(),
    }
}

/// Reads a JSONL stream. Lines longer than `max_line_bytes` are reported, never buffered whole.
pub(crate) fn read_jsonl(
    reader: impl Read,
    source_name: &str,
    max_line_bytes: usize,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
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
            let reason = format!("line is longer than the limit of {max_line_bytes} bytes");
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
pub(crate) fn read_csv(
    path: &Path,
    source_name: &str,
    datanet: &Datanet,
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
        row = batch_rows(&batch, row, sink)?;
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

/// Reads a Parquet file through arrow.
pub(crate) fn read_parquet(
    path: &Path,
    source_name: &str,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    // Read whole into memory (the file's records are held for its one batch anyway): the
    // decoder makes many small reads, and from a file each is a system call, so a crafted
    // 840-byte file kept it busy for 40 s (found by fuzzing, fuzz/regressions/ingest_parquet/).
    let bytes = bytes::Bytes::from(fs_err::read(path).map_err(Error::io(path))?);
    // The Arrow schema some writers embed (`ARROW:schema`, an IPC message in the footer) is not
    // read: arrow-ipc panics on a field type it does not know (found by fuzzing,
    // fuzz/regressions/ingest_parquet/), and the Parquet schema alone gives every type provdb
    // ingests (strings, integers, floats, booleans).
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let mut reader = parquet_call(source_name, || {
        ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
            .and_then(|builder| builder.with_batch_size(8192).build())
    })?
    .map_err(|e| whole(source_name, format!("not a readable Parquet file: {e}")))?;
    let mut row = 0u64;
    while let Some(batch) = parquet_call(source_name, || reader.next())? {
        let batch = batch.map_err(|e| whole(source_name, format!("invalid Parquet data: {e}")))?;
        row = batch_rows(&batch, row, sink)?;
    }
    if row == 0 {
        return Err(whole(source_name, "no records in file"));
    }
    Ok(())
}

/// Runs a call into the parquet crate, which asserts on some corrupt data instead of returning
/// an error (an RLE bit width over 64 in a dictionary page: found by fuzzing,
/// fuzz/regressions/ingest_parquet/): its panic becomes an input error. Unwind safety: after a
/// panic the reader is dropped unused and the whole input fails, so nothing half-read is kept.
fn parquet_call<T>(source_name: &str, call: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        whole(
            source_name,
            format!("invalid Parquet data (the decoder failed: {message})"),
        )
    })
}

/// Sends every row of an Arrow batch to `sink`, numbering rows after `rows_before`; returns
/// the number of rows seen so far. Null values are left out of the row.
pub(crate) fn batch_rows(
    batch: &RecordBatch,
    rows_before: u64,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<u64> {
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !is_supported(column.data_type()) {
            let reason = format!(
                "column '{}' has type {} that provdb cannot ingest",
                field.name(),
                column.data_type()
            );
            for row in 0..batch.num_rows() {
                sink(RawRow {
                    location: Location::Row(rows_before + row as u64 + 1),
                    fields: RowData::Unreadable(reason.clone()),
                })?;
            }
            return Ok(rows_before + batch.num_rows() as u64);
        }
    }
    for row in 0..batch.num_rows() {
        let mut map = Map::with_capacity(schema.fields().len());
        let mut failure = None;
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            if column.is_null(row) {
                continue;
            }
            match cell(column.as_ref(), row) {
                Ok(value) => {
                    map.insert(field.name().clone(), value);
                }
                Err(reason) => {
                    failure = Some(format!("column '{}': {reason}", field.name()));
                    break;
                }
            }
        }
        let fields = match failure {
            Some(reason) => RowData::Unreadable(reason),
            None => RowData::Object(map),
        };
        sink(RawRow {
            location: Location::Row(rows_before + row as u64 + 1),
            fields,
        })?;
    }
    Ok(rows_before + batch.num_rows() as u64)
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
        read_jsonl(input.as_bytes(), "t", 100, &mut |row| {
            rows.push((row.location, row.fields.into_object().map(|m| m.len())));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], (Location::Line(1), Ok(1)));
        assert!(
            matches!(&rows[1], (Location::Line(2), Err(reason)) if reason.contains("longer than"))
        );
        assert_eq!(rows[2], (Location::Line(3), Ok(1)));
    }

    #[test]
    fn header_parsing_handles_quotes() {
        assert_eq!(parse_header(r#"a,"b,c","d""e""#), vec!["a", "b,c", "d\"e"]);
    }
}
