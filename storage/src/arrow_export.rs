//! Records and chunks as Arrow `RecordBatch`es, the shape the SQL layer scans. Only the
//! projected columns are built (a scan that does not select `content` never copies it).
//!
//! Ids and addresses are exported as `0x`-prefixed lower-case hex strings so that they can be
//! compared with literals in SQL; `created_at` is milliseconds since the Unix epoch.

use std::sync::{Arc, LazyLock};

use arrow_array::{
    ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Result, StorageError};
use crate::model::{Chunk, Datanet, Record};

static RECORDS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("datanet", DataType::Utf8, false),
        Field::new("contributor", DataType::Utf8, false),
        Field::new("signature", DataType::Utf8, true),
        Field::new("license", DataType::Utf8, false),
        Field::new("created_at", DataType::Int64, false),
        Field::new("version", DataType::UInt32, false),
        Field::new("supersedes", DataType::Utf8, true),
        Field::new("quality", DataType::Float32, true),
        Field::new("status", DataType::Utf8, false),
        Field::new("sequence", DataType::UInt64, false),
        Field::new("chunk_count", DataType::UInt32, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, true),
    ]))
});

static CHUNKS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("chunk_id", DataType::UInt64, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("ordinal", DataType::UInt32, false),
        Field::new("start_byte", DataType::UInt32, false),
        Field::new("end_byte", DataType::UInt32, false),
        Field::new("text", DataType::Utf8, false),
    ]))
});

/// Schema of `records_to_batch`.
pub fn records_schema() -> SchemaRef {
    RECORDS_SCHEMA.clone()
}

/// Schema of `chunks_to_batch`.
pub fn chunks_schema() -> SchemaRef {
    CHUNKS_SCHEMA.clone()
}

/// Columns `projection` (indices into `schema`; all when `None`) as a batch of `rows` rows.
fn project(
    schema: &SchemaRef,
    rows: usize,
    projection: Option<&[usize]>,
    column: impl Fn(usize) -> ArrayRef,
) -> Result<RecordBatch> {
    let all: Vec<usize> = (0..schema.fields().len()).collect();
    let indices = projection.unwrap_or(&all);
    if let Some(bad) = indices.iter().find(|&&i| i >= all.len()) {
        return Err(StorageError::Internal(format!(
            "arrow export: no column {bad}"
        )));
    }
    let projected = Arc::new(
        schema
            .project(indices)
            .map_err(|e| StorageError::Internal(format!("arrow export: {e}")))?,
    );
    let columns: Vec<ArrayRef> = indices.iter().map(|&i| column(i)).collect();
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(projected, columns, &options)
        .map_err(|e| StorageError::Internal(format!("arrow export: {e}")))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn owned_strings(values: impl Iterator<Item = Option<String>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// Records (all of one Datanet, `datanet`) as one batch with every provenance column.
pub fn records_to_batch(datanet: &Datanet, records: &[Record]) -> Result<RecordBatch> {
    records_to_batch_projected(datanet, records, None)
}

/// Records of one Datanet as a batch of the columns `projection` selects (indices into
/// [`records_schema`]; all when `None`): only those columns are built.
pub fn records_to_batch_projected(
    datanet: &Datanet,
    records: &[Record],
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    if let Some(stranger) = records.iter().find(|r| r.datanet_id != datanet.id) {
        return Err(StorageError::Internal(format!(
            "record {} is not of datanet {}",
            stranger.record_id, datanet.name
        )));
    }
    let column = |index: usize| -> ArrayRef {
        let rs = records.iter();
        match index {
            0 => owned_strings(rs.map(|r| Some(r.record_id.to_string()))),
            1 => Arc::new(rs.map(|r| Some(r.datanet_id)).collect::<UInt32Array>()),
            2 => strings(rs.map(|_| Some(datanet.name.as_str()))),
            3 => owned_strings(rs.map(|r| Some(r.contributor.to_string()))),
            4 => owned_strings(rs.map(|r| {
                r.signature
                    .as_ref()
                    .map(|s| format!("0x{}", hex::encode(s)))
            })),
            5 => strings(rs.map(|r| Some(r.license.as_str()))),
            6 => Arc::new(rs.map(|r| Some(r.created_at_ms)).collect::<Int64Array>()),
            7 => Arc::new(rs.map(|r| Some(r.version)).collect::<UInt32Array>()),
            8 => owned_strings(rs.map(|r| r.supersedes.map(|s| s.to_string()))),
            9 => Arc::new(rs.map(|r| r.quality).collect::<Float32Array>()),
            10 => strings(rs.map(|r| Some(r.status.as_str()))),
            11 => Arc::new(rs.map(|r| Some(r.sequence)).collect::<UInt64Array>()),
            12 => Arc::new(rs.map(|r| Some(r.chunk_count())).collect::<UInt32Array>()),
            13 => strings(rs.map(|r| Some(r.content.as_str()))),
            // The text column's value; a span that does not unescape cannot be written by
            // ingest, and would show as NULL.
            _ => owned_strings(rs.map(|r| r.text().ok().flatten())),
        }
    };
    project(&RECORDS_SCHEMA, records.len(), projection, column)
}

/// Chunks as one batch.
pub fn chunks_to_batch(chunks: &[Chunk]) -> Result<RecordBatch> {
    chunks_to_batch_projected(chunks, None)
}

/// Chunks as a batch of the columns `projection` selects (indices into [`chunks_schema`]).
pub fn chunks_to_batch_projected(
    chunks: &[Chunk],
    projection: Option<&[usize]>,
) -> Result<RecordBatch> {
    let column = |index: usize| -> ArrayRef {
        let cs = chunks.iter();
        match index {
            0 => Arc::new(cs.map(|c| Some(c.chunk_id)).collect::<UInt64Array>()),
            1 => owned_strings(cs.map(|c| Some(c.record_id.to_string()))),
            2 => Arc::new(cs.map(|c| Some(c.datanet_id)).collect::<UInt32Array>()),
            3 => Arc::new(cs.map(|c| Some(c.ordinal)).collect::<UInt32Array>()),
            4 => Arc::new(cs.map(|c| Some(c.start_byte)).collect::<UInt32Array>()),
            5 => Arc::new(cs.map(|c| Some(c.end_byte)).collect::<UInt32Array>()),
            _ => strings(cs.map(|c| Some(c.text.as_str()))),
        }
    };
    project(&CHUNKS_SCHEMA, chunks.len(), projection, column)
}
