//! Records and chunks as Arrow `RecordBatch`es, the shape the SQL layer scans. Only the
//! projected columns are built (a scan that does not select `content` never copies it), and
//! records are appended from in-place views ([`RecordsBatchBuilder`]), so a scan copies each
//! projected value once, from the RocksDB value into the Arrow buffer.
//!
//! Ids and addresses are exported as `0x`-prefixed lower-case hex strings so that they can be
//! compared with literals in SQL; `created_at` is milliseconds since the Unix epoch.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Float32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Result, StorageError};
use crate::model::{Chunk, Datanet, Record};
use crate::view::RecordView;

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
        Field::new("signature_scheme", DataType::Utf8, true),
        Field::new("stored_by", DataType::Utf8, true),
        Field::new("stored_as", DataType::Utf8, true),
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

/// `0x` and the lower-case hex of `bytes`, written into `out` (no allocation).
fn hex_into<'o>(bytes: &[u8], out: &'o mut [u8]) -> &'o str {
    let digits = &mut out[..2 + 2 * bytes.len()];
    digits[..2].copy_from_slice(b"0x");
    // Infallible: the slice is exactly twice the input's length.
    let _ = hex::encode_to_slice(bytes, &mut digits[2..]);
    debug_assert!(digits.is_ascii());
    // SAFETY: `digits` is "0x" and hex digits, all ASCII, so valid UTF-8 (SQL scans print two
    // of these per record; the checked conversion was 1 % of a GROUP BY's CPU).
    unsafe { std::str::from_utf8_unchecked(digits) }
}

/// Index of the text column in [`records_schema`].
const TEXT_COLUMN: usize = 14;

/// The text column's builder: each record's text is copied (and checked) straight into the
/// values buffer by [`RecordView::append_text`], without a second pass.
struct TextColumn {
    values: Vec<u8>,
    /// Offsets into `values`, starting with 0, one more than the rows.
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl TextColumn {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            values: Vec::with_capacity(bytes),
            offsets,
            nulls: NullBufferBuilder::new(rows),
        }
    }

    fn append(&mut self, record: &RecordView<'_>) -> Result<()> {
        let present = match record.append_text(&mut self.values) {
            Ok(present) => present,
            Err(e @ StorageError::Corruption { .. }) => return Err(e),
            // A span that does not unescape cannot be written by ingest; it shows as NULL.
            Err(_) => false,
        };
        let end = i32::try_from(self.values.len()).map_err(|_| {
            StorageError::Internal("arrow export: over 2 GiB of text in one batch".into())
        })?;
        self.offsets.push(end);
        self.nulls.append(present);
        Ok(())
    }

    fn finish(&mut self) -> StringArray {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::take(&mut self.offsets)));
        let values = Buffer::from_vec(std::mem::take(&mut self.values));
        // SAFETY: every value between two offsets was appended whole by `append_text`, which
        // appends only UTF-8 (checked, or ASCII by its scan); offsets rise from 0 to the
        // values' length, one per row, and the null buffer has one bit per row.
        unsafe { StringArray::new_unchecked(offsets, values, self.nulls.finish()) }
    }
}

/// One projected column of [`RecordsBatchBuilder`].
enum ColumnBuilder {
    RecordText(TextColumn),
    Text(StringBuilder),
    U32(UInt32Builder),
    I64(Int64Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
}

/// Builds a batch of the projected columns of `records` one record at a time, straight from
/// [`RecordView`]s: ids and addresses are hex-printed into a stack buffer, the text column is
/// copied from the content without unescaping when it has no escape, and columns that are not
/// projected cost nothing.
pub struct RecordsBatchBuilder {
    /// (index in [`records_schema`], its builder), in projection order.
    columns: Vec<(usize, ColumnBuilder)>,
    schema: SchemaRef,
    rows: usize,
    /// Rows a batch is sized for: builders start at this size again after each `finish`
    /// (growing from empty would copy each buffer about twice over).
    capacity: usize,
}

/// An empty builder for column `index` of [`records_schema`], sized for `capacity` rows.
fn column_builder(index: usize, capacity: usize) -> ColumnBuilder {
    match RECORDS_SCHEMA.field(index).data_type() {
        DataType::Utf8 if index == TEXT_COLUMN => {
            ColumnBuilder::RecordText(TextColumn::with_capacity(capacity, capacity * 512))
        }
        DataType::Utf8 => {
            let bytes_per_row = match index {
                0 | 8 => 66,
                4 => 132,
                15 | 17 => 11,
                13 => 512,
                _ => 42,
            };
            ColumnBuilder::Text(StringBuilder::with_capacity(
                capacity,
                capacity * bytes_per_row,
            ))
        }
        DataType::UInt32 => ColumnBuilder::U32(UInt32Builder::with_capacity(capacity)),
        DataType::Int64 => ColumnBuilder::I64(Int64Builder::with_capacity(capacity)),
        DataType::UInt64 => ColumnBuilder::U64(UInt64Builder::with_capacity(capacity)),
        _ => ColumnBuilder::F32(Float32Builder::with_capacity(capacity)),
    }
}

impl RecordsBatchBuilder {
    /// A builder of the columns `projection` selects (indices into [`records_schema`]; all
    /// when `None`), with room for `capacity` rows.
    pub fn new(projection: Option<&[usize]>, capacity: usize) -> Result<Self> {
        let all: Vec<usize> = (0..RECORDS_SCHEMA.fields().len()).collect();
        let indices = projection.unwrap_or(&all);
        let schema = Arc::new(
            RECORDS_SCHEMA
                .project(indices)
                .map_err(|e| StorageError::Internal(format!("arrow export: {e}")))?,
        );
        let columns = indices
            .iter()
            .map(|&index| (index, column_builder(index, capacity)))
            .collect();
        Ok(Self {
            columns,
            schema,
            rows: 0,
            capacity,
        })
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends `record`, a record of the Datanet named `datanet`; fails only on a damaged
    /// record (content that is not UTF-8).
    pub fn append(&mut self, datanet: &str, record: &RecordView<'_>) -> Result<()> {
        let mut hex = [0u8; 2 + 2 * 65];
        for (index, builder) in &mut self.columns {
            match (*index, builder) {
                (0, ColumnBuilder::Text(b)) => {
                    b.append_value(hex_into(&record.record_id.0, &mut hex))
                }
                (1, ColumnBuilder::U32(b)) => b.append_value(record.datanet_id),
                (2, ColumnBuilder::Text(b)) => b.append_value(datanet),
                (3, ColumnBuilder::Text(b)) => {
                    b.append_value(hex_into(&record.contributor.0, &mut hex))
                }
                (4, ColumnBuilder::Text(b)) => match record.signature {
                    // Longer signatures cannot be stored by ingest; printed the slow way.
                    Some(s) if s.len() <= 65 => b.append_value(hex_into(s, &mut hex)),
                    Some(s) => b.append_value(format!("0x{}", hex::encode(s))),
                    None => b.append_null(),
                },
                (5, ColumnBuilder::Text(b)) => b.append_value(record.license()?),
                (6, ColumnBuilder::I64(b)) => b.append_value(record.created_at_ms),
                (7, ColumnBuilder::U32(b)) => b.append_value(record.version),
                (8, ColumnBuilder::Text(b)) => match &record.supersedes {
                    Some(id) => b.append_value(hex_into(&id.0, &mut hex)),
                    None => b.append_null(),
                },
                (9, ColumnBuilder::F32(b)) => b.append_option(record.quality),
                (10, ColumnBuilder::Text(b)) => b.append_value(record.status.as_str()),
                (11, ColumnBuilder::U64(b)) => b.append_value(record.sequence),
                (12, ColumnBuilder::U32(b)) => b.append_value(record.chunk_count),
                (13, ColumnBuilder::Text(b)) => b.append_value(record.content()?),
                (15, ColumnBuilder::Text(b)) => {
                    b.append_option(record.signature_scheme.map(|s| s.as_str()))
                }
                (16, ColumnBuilder::Text(b)) => match &record.act {
                    Some(act) => b.append_value(hex_into(&act.by.0, &mut hex)),
                    None => b.append_null(),
                },
                (17, ColumnBuilder::Text(b)) => {
                    b.append_option(record.act.map(|act| act.role.as_str()))
                }
                (_, ColumnBuilder::RecordText(b)) => b.append(record)?,
                // Every index has the builder its type gets in `new`.
                (_, ColumnBuilder::Text(b)) => b.append_null(),
                (_, ColumnBuilder::U32(b)) => b.append_null(),
                (_, ColumnBuilder::I64(b)) => b.append_null(),
                (_, ColumnBuilder::U64(b)) => b.append_null(),
                (_, ColumnBuilder::F32(b)) => b.append_null(),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as a batch; the builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let capacity = self.capacity;
        let columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(index, builder)| -> ArrayRef {
                match std::mem::replace(builder, column_builder(*index, capacity)) {
                    ColumnBuilder::RecordText(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::U32(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::I64(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::U64(mut b) => Arc::new(b.finish()),
                    ColumnBuilder::F32(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map_err(|e| StorageError::Internal(format!("arrow export: {e}")))
    }
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
    if let Some(bad) = projection
        .unwrap_or_default()
        .iter()
        .find(|&&i| i >= RECORDS_SCHEMA.fields().len())
    {
        return Err(StorageError::Internal(format!(
            "arrow export: no column {bad}"
        )));
    }
    let mut builder = RecordsBatchBuilder::new(projection, records.len())?;
    for record in records {
        builder.append(&datanet.name, &record.view())?;
    }
    builder.finish()
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
