//! What a Parquet file's pages decompress to, read from the page headers themselves before any
//! page is decoded: the sum over the file, and per row group a bound on one row's decoded
//! bytes. The footer's own size fields are not trusted (a crafted file can state anything
//! there); the page headers are what the decoder sizes its buffers by, and it refuses a page
//! whose data does not decompress to exactly its header's size.
//!
//! The headers are Thrift compact-protocol structs; only fields 2 (uncompressed size) and 3
//! (compressed size) are read, everything else is skipped, with a bounded nesting depth.

use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};

/// Deepest struct nesting skipped inside a page header (real headers nest two deep).
const MAX_DEPTH: u32 = 16;
/// Bytes a fixed-width value decodes to at most (INT96).
const FIXED_VALUE_BYTES: u64 = 12;

/// The pages of a file, as their headers state them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PageSizes {
    /// Sum of every page's uncompressed size.
    pub(crate) uncompressed_bytes: u64,
    /// The largest over the row groups of the sum over columns of the largest value one row
    /// can hold: a byte-array value never decodes to more than the page (dictionary or data)
    /// it comes from, a fixed-width one to at most 12 bytes.
    pub(crate) row_bound_bytes: u64,
}

/// Walks every column chunk's pages in `file`; why not, when a header cannot be read.
pub(crate) fn page_sizes(file: &[u8], metadata: &ParquetMetaData) -> Result<PageSizes, String> {
    let mut sizes = PageSizes::default();
    for (index, group) in metadata.row_groups().iter().enumerate() {
        let mut row_bound = 0u64;
        for column in group.columns() {
            let (total, largest) = column_pages(file, column)
                .map_err(|e| format!("row group {index}, column {}: {e}", column.column_path()))?;
            sizes.uncompressed_bytes = sizes.uncompressed_bytes.saturating_add(total);
            row_bound = row_bound.saturating_add(match column.column_type() {
                PhysicalType::BYTE_ARRAY | PhysicalType::FIXED_LEN_BYTE_ARRAY => largest,
                _ => FIXED_VALUE_BYTES,
            });
        }
        sizes.row_bound_bytes = sizes.row_bound_bytes.max(row_bound);
    }
    Ok(sizes)
}

/// (sum of page sizes, largest page) of one column chunk.
fn column_pages(file: &[u8], column: &ColumnChunkMetaData) -> Result<(u64, u64), String> {
    let start = column
        .dictionary_page_offset()
        .unwrap_or_else(|| column.data_page_offset());
    let length = column.compressed_size();
    let range = usize::try_from(start)
        .ok()
        .zip(usize::try_from(length).ok())
        .and_then(|(start, length)| Some(start..start.checked_add(length)?))
        .filter(|range| range.end <= file.len())
        .ok_or_else(|| format!("its byte range ({start}, {length}) is outside the file"))?;
    let mut chunk = &file[range];
    let (mut total, mut largest) = (0u64, 0u64);
    while !chunk.is_empty() {
        let mut reader = Compact { bytes: chunk };
        let (uncompressed, compressed) = reader.page_header()?;
        let after = chunk.len() - reader.bytes.len();
        chunk = chunk
            .get(after + compressed..)
            .ok_or("a page runs past its column chunk")?;
        total = total.saturating_add(uncompressed);
        largest = largest.max(uncompressed);
    }
    Ok((total, largest))
}

/// A reader of Thrift's compact protocol over a byte slice.
struct Compact<'a> {
    bytes: &'a [u8],
}

impl Compact<'_> {
    /// (uncompressed size, compressed size) of the page header at the start.
    fn page_header(&mut self) -> Result<(u64, usize), String> {
        let (mut uncompressed, mut compressed) = (None, None);
        let mut last_id = 0i16;
        loop {
            let header = self.byte()?;
            if header == 0 {
                break;
            }
            let kind = header & 0x0f;
            let delta = i16::from(header >> 4);
            last_id = if delta == 0 {
                self.zigzag()? as i16
            } else {
                last_id.wrapping_add(delta)
            };
            match (last_id, kind) {
                (2 | 3, 5) => {
                    let size = u64::try_from(self.zigzag()?)
                        .map_err(|_| "a page header states a negative size")?;
                    if last_id == 2 {
                        uncompressed = Some(size);
                    } else {
                        compressed = Some(size);
                    }
                }
                _ => self.skip(kind, 0)?,
            }
        }
        let uncompressed = uncompressed.ok_or("a page header without its uncompressed size")?;
        let compressed = compressed.ok_or("a page header without its compressed size")?;
        let compressed =
            usize::try_from(compressed).map_err(|_| "a page size over the address space")?;
        Ok((uncompressed, compressed))
    }

    fn byte(&mut self) -> Result<u8, String> {
        let (&first, rest) = self.bytes.split_first().ok_or("a page header is cut off")?;
        self.bytes = rest;
        Ok(first)
    }

    fn advance(&mut self, count: usize) -> Result<(), String> {
        self.bytes = self.bytes.get(count..).ok_or("a page header is cut off")?;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint in a page header is too long".into())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// Skips one value of compact type `kind`.
    fn skip(&mut self, kind: u8, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("a page header nests too deep".into());
        }
        match kind {
            1 | 2 => Ok(()),
            3 => self.advance(1),
            4..=6 => self.varint().map(drop),
            7 => self.advance(8),
            8 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "a length overflows")?;
                self.advance(length)
            }
            9 | 10 => {
                let header = self.byte()?;
                let count = match header >> 4 {
                    15 => self.varint()?,
                    short => u64::from(short),
                };
                self.skip_many(count, &[header & 0x0f], depth)
            }
            11 => {
                let count = self.varint()?;
                if count == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                self.skip_many(count, &[types >> 4, types & 0x0f], depth)
            }
            12 => loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    self.zigzag()?;
                }
                self.skip(header & 0x0f, depth + 1)?;
            },
            other => Err(format!("unknown Thrift type {other} in a page header")),
        }
    }

    /// Skips `count` elements, each one value of every type in `kinds` (one for lists, a key
    /// and a value for maps). Every element takes at least one byte, so a count beyond what
    /// is left is refused before looping.
    fn skip_many(&mut self, count: u64, kinds: &[u8], depth: u32) -> Result<(), String> {
        if count > self.bytes.len() as u64 {
            return Err("a list in a page header is longer than its bytes".into());
        }
        for _ in 0..count {
            for &kind in kinds {
                // Booleans inside a container take one byte each.
                if matches!(kind, 1 | 2) {
                    self.advance(1)?;
                } else {
                    self.skip(kind, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    fn file(texts: Vec<String>) -> Vec<u8> {
        let numbers = Int64Array::from_iter_values(0..texts.len() as i64);
        let batch = RecordBatch::try_from_iter([
            ("text", Arc::new(StringArray::from(texts)) as _),
            ("n", Arc::new(numbers) as _),
        ])
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    #[test]
    fn page_headers_give_what_the_pages_decompress_to() {
        let bytes = file(vec!["x".repeat(100_000), "short".into()]);
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let sizes = page_sizes(&bytes, reader.metadata()).unwrap();
        let declared: i64 = reader.metadata().row_groups()[0]
            .columns()
            .iter()
            .map(|c| c.uncompressed_size())
            .sum();
        assert!(sizes.uncompressed_bytes >= 100_000, "{sizes:?}");
        // The footer counts the page headers too; the pages alone are a little less.
        assert!(
            sizes.uncompressed_bytes <= declared as u64,
            "{sizes:?} vs {declared}"
        );
        assert!(
            sizes.row_bound_bytes >= 100_000 + FIXED_VALUE_BYTES,
            "{sizes:?}"
        );
    }

    #[test]
    fn a_cut_or_lying_header_is_an_error_not_a_panic() {
        let bytes = file(vec!["abc".into(); 10]);
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let metadata = reader.metadata();
        let short = &bytes[..8];
        assert!(page_sizes(short, metadata).is_err());
        let mut garbage = bytes.clone();
        let (start, _) = metadata.row_groups()[0].column(0).byte_range();
        for byte in &mut garbage[start as usize..start as usize + 8] {
            *byte = 0xff;
        }
        assert!(page_sizes(&garbage, metadata).is_err());
    }
}
