//! Records and chunks as Arrow `RecordBatch`es, the shape the SQL layer scans.
//!
//! Ids and addresses are exported as `0x`-prefixed lower-case hex strings so that they can be
//! compared with literals in SQL; `created_at` is milliseconds since the Unix epoch.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Float32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
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

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    RecordBatch::try_new(schema, columns)
        .map_err(|e| StorageError::Internal(format!("arrow export: {e}")))
}

/// Records (all of one Datanet, `datanet`) as one batch with every provenance column.
pub fn records_to_batch(datanet: &Datanet, records: &[Record]) -> Result<RecordBatch> {
    let n = records.len();
    let mut record_id = StringBuilder::with_capacity(n, n * 66);
    let mut datanet_id = UInt32Builder::with_capacity(n);
    let mut datanet_name = StringBuilder::with_capacity(n, n * datanet.name.len());
    let mut contributor = StringBuilder::with_capacity(n, n * 42);
    let mut signature = StringBuilder::with_capacity(n, n * 132);
    let mut license = StringBuilder::new();
    let mut created_at = Int64Builder::with_capacity(n);
    let mut version = UInt32Builder::with_capacity(n);
    let mut supersedes = StringBuilder::new();
    let mut quality = Float32Builder::with_capacity(n);
    let mut status = StringBuilder::new();
    let mut sequence = UInt64Builder::with_capacity(n);
    let mut chunk_count = UInt32Builder::with_capacity(n);
    let mut content = StringBuilder::new();
    for record in records {
        if record.datanet_id != datanet.id {
            return Err(StorageError::Internal(format!(
                "record {} is not of datanet {}",
                record.record_id, datanet.name
            )));
        }
        record_id.append_value(record.record_id.to_string());
        datanet_id.append_value(record.datanet_id);
        datanet_name.append_value(&datanet.name);
        contributor.append_value(record.contributor.to_string());
        signature.append_option(
            record
                .signature
                .as_ref()
                .map(|s| format!("0x{}", hex::encode(s))),
        );
        license.append_value(&record.license);
        created_at.append_value(record.created_at_ms);
        version.append_value(record.version);
        supersedes.append_option(record.supersedes.map(|s| s.to_string()));
        quality.append_option(record.quality);
        status.append_value(record.status.as_str());
        sequence.append_value(record.sequence);
        chunk_count.append_value(record.chunk_count());
        content.append_value(&record.content);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(record_id.finish()),
        Arc::new(datanet_id.finish()),
        Arc::new(datanet_name.finish()),
        Arc::new(contributor.finish()),
        Arc::new(signature.finish()),
        Arc::new(license.finish()),
        Arc::new(created_at.finish()),
        Arc::new(version.finish()),
        Arc::new(supersedes.finish()),
        Arc::new(quality.finish()),
        Arc::new(status.finish()),
        Arc::new(sequence.finish()),
        Arc::new(chunk_count.finish()),
        Arc::new(content.finish()),
    ];
    batch(records_schema(), columns)
}

/// Chunks as one batch.
pub fn chunks_to_batch(chunks: &[Chunk]) -> Result<RecordBatch> {
    let n = chunks.len();
    let mut chunk_id = UInt64Builder::with_capacity(n);
    let mut record_id = StringBuilder::with_capacity(n, n * 66);
    let mut datanet_id = UInt32Builder::with_capacity(n);
    let mut ordinal = UInt32Builder::with_capacity(n);
    let mut start = UInt32Builder::with_capacity(n);
    let mut end = UInt32Builder::with_capacity(n);
    let mut text = StringBuilder::new();
    for chunk in chunks {
        chunk_id.append_value(chunk.chunk_id);
        record_id.append_value(chunk.record_id.to_string());
        datanet_id.append_value(chunk.datanet_id);
        ordinal.append_value(chunk.ordinal);
        start.append_value(chunk.start_byte);
        end.append_value(chunk.end_byte);
        text.append_value(&chunk.text);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(chunk_id.finish()),
        Arc::new(record_id.finish()),
        Arc::new(datanet_id.finish()),
        Arc::new(ordinal.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(text.finish()),
    ];
    batch(chunks_schema(), columns)
}
