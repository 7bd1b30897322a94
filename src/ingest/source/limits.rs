//! Limits on what one input decodes to, for every format: bytes per row, bytes per file and
//! rows per file ([`InputLimits`]), counted by a [`Budget`] while the input is read.
//!
//! Invariant: a reader hands the budget every row as it decodes it, before the row is kept, so
//! an input is refused as soon as it crosses a file limit, with at most one decoded batch in
//! memory beyond the rows already held. A row over the per-row limit is a row error (refused
//! or, with `skip_invalid`, listed); crossing a file limit fails the whole input
//! ([`Error::TooLarge`]), naming the limit, where it was crossed and the setting to change.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::error::{Error, Location, Result};
use crate::ingest::IngestOptions;

// The settings that raise each limit, named in refusals.
pub(crate) const ROW_SETTING: &str =
    "max_record_bytes: `provdb ingest --max-record-bytes`, `provdb serve --max-record-bytes`";
const FILE_BYTES_SETTING: &str =
    "max_decoded_bytes: `provdb ingest --max-decoded-mb`, `provdb serve --max-upload-decoded-mb`";
const ROWS_SETTING: &str = "max_rows: `provdb ingest --max-rows`, `provdb serve --max-upload-rows`";

/// What one input may decode to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InputLimits {
    /// Bytes of one row: a JSONL line, or a columnar row's fields as JSON would spell them.
    pub(crate) row_bytes: usize,
    /// Bytes of all rows of the input, counted as for `row_bytes`.
    pub(crate) file_bytes: u64,
    /// Rows of the input.
    pub(crate) rows: u64,
}

impl IngestOptions {
    /// The limits of one input under these options.
    pub(crate) fn input_limits(&self) -> InputLimits {
        InputLimits {
            row_bytes: self.max_record_bytes,
            file_bytes: self.max_decoded_bytes,
            rows: self.max_rows,
        }
    }
}

/// Rows and decoded bytes of one input so far.
pub(crate) struct Budget<'a> {
    limits: InputLimits,
    source_name: &'a str,
    rows: u64,
    bytes: u64,
}

impl<'a> Budget<'a> {
    pub(crate) fn new(limits: InputLimits, source_name: &'a str) -> Self {
        Self {
            limits,
            source_name,
            rows: 0,
            bytes: 0,
        }
    }

    pub(crate) fn limits(&self) -> InputLimits {
        self.limits
    }

    /// Counts a row of `bytes` decoded bytes at `location`: an error when the input crosses a
    /// file limit; `Some(reason)` when the row alone is over the row limit.
    pub(crate) fn row(&mut self, location: Location, bytes: u64) -> Result<Option<String>> {
        self.rows += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.rows > self.limits.rows {
            return Err(self.too_large(
                location,
                format!(
                    "the input has more than {} rows, the limit ({ROWS_SETTING})",
                    self.limits.rows
                ),
            ));
        }
        if self.bytes > self.limits.file_bytes {
            return Err(self.too_large(
                location,
                format!(
                    "the input decodes to more than {} bytes, the limit ({FILE_BYTES_SETTING})",
                    self.limits.file_bytes
                ),
            ));
        }
        Ok((bytes > self.limits.row_bytes as u64).then(|| {
            format!(
                "the row decodes to {bytes} bytes, over the limit of {} bytes per row \
                 ({ROW_SETTING})",
                self.limits.row_bytes
            )
        }))
    }

    /// Refuses an input before decoding it when what its own metadata declares is already
    /// over a file limit (`rows`, `decoded_bytes`: what it declares, when it does).
    pub(crate) fn check_declared(
        &self,
        rows: Option<u64>,
        decoded_bytes: Option<u64>,
    ) -> Result<()> {
        if let Some(rows) = rows
            && rows > self.limits.rows
        {
            return Err(self.too_large(
                Location::Whole,
                format!(
                    "the file declares {rows} rows, over the limit of {} rows ({ROWS_SETTING})",
                    self.limits.rows
                ),
            ));
        }
        if let Some(bytes) = decoded_bytes
            && bytes > self.limits.file_bytes
        {
            return Err(self.too_large(
                Location::Whole,
                format!(
                    "the file's pages decompress to {bytes} bytes, over the limit of {} decoded \
                     bytes ({FILE_BYTES_SETTING})",
                    self.limits.file_bytes
                ),
            ));
        }
        Ok(())
    }

    fn too_large(&self, location: Location, reason: String) -> Error {
        Error::TooLarge {
            source_name: self.source_name.into(),
            location,
            reason,
        }
    }
}

/// Decoded bytes of each row of `batch`: its non-null fields as a JSON object would spell
/// them (name, value, quotes and separators), numbers counted as 8 bytes.
pub(crate) fn row_bytes(batch: &RecordBatch) -> Vec<u64> {
    let mut sizes = vec![2u64; batch.num_rows()];
    let schema = batch.schema();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let name = field.name().len() as u64 + 4;
        for (row, size) in sizes.iter_mut().enumerate() {
            if !column.is_null(row) {
                *size += name + cell_bytes(column.as_ref(), row);
            }
        }
    }
    sizes
}

fn cell_bytes(column: &dyn Array, row: usize) -> u64 {
    let length = match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(row).len(),
        DataType::LargeUtf8 => column.as_string::<i64>().value(row).len(),
        DataType::Utf8View => column.as_string_view().value(row).len(),
        DataType::Binary => column.as_binary::<i32>().value(row).len(),
        DataType::LargeBinary => column.as_binary::<i64>().value(row).len(),
        _ => 8,
    };
    length as u64 + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> InputLimits {
        InputLimits {
            row_bytes: 10,
            file_bytes: 25,
            rows: 3,
        }
    }

    #[test]
    fn a_row_over_its_limit_is_a_row_error_and_the_file_goes_on() {
        let mut budget = Budget::new(limits(), "f");
        assert_eq!(budget.row(Location::Row(1), 4).unwrap(), None);
        let reason = budget.row(Location::Row(2), 11).unwrap().unwrap();
        assert!(
            reason.contains("11 bytes, over the limit of 10"),
            "{reason}"
        );
        assert!(reason.contains("--max-record-bytes"), "{reason}");
    }

    #[test]
    fn crossing_a_file_limit_fails_the_input_where_it_was_crossed() {
        let mut budget = Budget::new(limits(), "f");
        for row in 1..=2 {
            budget.row(Location::Row(row), 10).unwrap();
        }
        let error = budget.row(Location::Row(3), 10).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::TooLarge { .. }), "{text}");
        assert!(text.starts_with("f: row 3: "), "{text}");
        assert!(text.contains("more than 25 bytes"), "{text}");
        assert!(text.contains("--max-upload-decoded-mb"), "{text}");

        let mut budget = Budget::new(limits(), "f");
        for line in 1..=3 {
            budget.row(Location::Line(line), 1).unwrap();
        }
        let text = budget.row(Location::Line(4), 1).unwrap_err().to_string();
        assert!(
            text.contains("line 4: the input has more than 3 rows"),
            "{text}"
        );
        assert!(text.contains("--max-upload-rows"), "{text}");
    }

    #[test]
    fn declared_sizes_over_a_limit_are_refused_before_decoding() {
        let budget = Budget::new(limits(), "f");
        assert!(budget.check_declared(Some(3), Some(25)).is_ok());
        let rows = budget
            .check_declared(Some(4), None)
            .unwrap_err()
            .to_string();
        assert!(rows.contains("declares 4 rows"), "{rows}");
        let bytes = budget
            .check_declared(None, Some(26))
            .unwrap_err()
            .to_string();
        assert!(bytes.contains("decompress to 26 bytes"), "{bytes}");
    }
}
