//! Reading a Parquet file through arrow, within the input's limits.
//!
//! A Parquet file can decode to far more than its size (pages of one repeated string compress
//! a thousandfold; a dictionary value is repeated on every row that refers to it). Before
//! decoding, the footer's row count and the page headers' sizes (`parquet_pages`) are checked
//! against the limits, and the batch size is chosen so that one batch stays within
//! [`BATCH_BUDGET_BYTES`] whatever its rows hold. While decoding, every row is counted by the
//! [`Budget`], so nothing beyond one batch is decoded past a limit.

use std::path::Path;

use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

use super::limits::Budget;
use super::parquet_pages::page_sizes;
use super::{RawRow, batch_rows_within, whole};
use crate::error::{Error, Result};

/// Most rows decoded together.
const MAX_BATCH_ROWS: usize = 8192;
/// Most bytes one decoded batch may hold, at the bound of `parquet_pages`.
const BATCH_BUDGET_BYTES: u64 = 64 << 20;

/// Reads a Parquet file, refusing it as soon as it crosses a limit of `budget`.
pub(crate) fn read_parquet(
    path: &Path,
    source_name: &str,
    budget: &mut Budget<'_>,
    sink: &mut dyn FnMut(RawRow) -> Result<()>,
) -> Result<()> {
    // Read whole into memory (the file's records are held for its one batch anyway): the
    // decoder makes many small reads, and from a file each is a system call, so a crafted
    // 840-byte file kept it busy for 40 s (found by fuzzing, fuzz/regressions/ingest_parquet/).
    let bytes = bytes::Bytes::from(fs_err::read(path).map_err(Error::io(path))?);
    // The Arrow schema some writers embed (`ARROW:schema`, an IPC message in the footer) is not
    // read: arrow-ipc panics on a field type it does not know (found by fuzzing,
    // fuzz/regressions/ingest_parquet/), and the Parquet schema alone gives every type provdb
    // ingests (strings, integers, floats, booleans).
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = parquet_call(source_name, || {
        ParquetRecordBatchReaderBuilder::try_new_with_options(bytes.clone(), options)
    })?
    .map_err(|e| whole(source_name, format!("not a readable Parquet file: {e}")))?;
    let batch_size = checked_batch_size(&bytes, &builder, source_name, budget)?;
    let mut reader = parquet_call(source_name, || builder.with_batch_size(batch_size).build())?
        .map_err(|e| whole(source_name, format!("not a readable Parquet file: {e}")))?;
    let mut row = 0u64;
    while let Some(batch) = parquet_call(source_name, || reader.next())? {
        let batch = batch.map_err(|e| whole(source_name, format!("invalid Parquet data: {e}")))?;
        row = batch_rows_within(&batch, row, budget, sink)?;
    }
    if row == 0 {
        return Err(whole(source_name, "no records in file"));
    }
    Ok(())
}

/// Checks the file's declared rows and its pages' sizes against the limits; the batch size
/// that keeps one decoded batch within [`BATCH_BUDGET_BYTES`].
fn checked_batch_size(
    bytes: &[u8],
    builder: &ParquetRecordBatchReaderBuilder<bytes::Bytes>,
    source_name: &str,
    budget: &Budget<'_>,
) -> Result<usize> {
    let metadata = builder.metadata();
    let declared_rows = u64::try_from(metadata.file_metadata().num_rows()).ok();
    budget.check_declared(declared_rows, None)?;
    let sizes = parquet_call(source_name, || page_sizes(bytes, metadata))?
        .map_err(|e| whole(source_name, format!("invalid Parquet data: {e}")))?;
    budget.check_declared(None, Some(sizes.uncompressed_bytes))?;
    let batch_budget = BATCH_BUDGET_BYTES.min(budget.limits().file_bytes).max(1);
    let rows = batch_budget / sizes.row_bound_bytes.max(1);
    Ok((rows as usize).clamp(1, MAX_BATCH_ROWS))
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
