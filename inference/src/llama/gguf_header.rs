//! A walk over a GGUF file's metadata before candle parses it, for what candle does not check.
//!
//! candle's `gguf_file::Content::read` bounds every length by the file size, but divides the
//! header's end by `general.alignment` as given: a zero alignment panics (division by zero).
//! This walk finds that key and refuses a zero; on anything else it cannot follow (a bad magic,
//! a truncated value, an unknown type) it stops and leaves the error to candle's parser.
//! It reads keys of at most [`MAX_KEY_BYTES`] and seeks over every value, so it allocates
//! nothing from the file's length fields.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{InferenceError, Result};

/// The key whose value candle divides by.
const ALIGNMENT_KEY: &[u8] = b"general.alignment";
/// Longer keys are skipped unread.
const MAX_KEY_BYTES: u64 = 64;
/// Arrays of arrays nest at most this deep (candle's own limit).
const MAX_DEPTH: usize = 64;

/// Why the walk stopped early: candle reports the problem in its own words.
struct Stop;

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Stop
    }
}

struct Walker<R> {
    reader: R,
    /// GGUF v2 and v3 write lengths as u64, v1 as u32.
    wide: bool,
}

impl<R: Read + Seek> Walker<R> {
    fn u32(&mut self) -> Result<u32, Stop> {
        let mut bytes = [0u8; 4];
        self.reader.read_exact(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn length(&mut self) -> Result<u64, Stop> {
        if !self.wide {
            return self.u32().map(u64::from);
        }
        let mut bytes = [0u8; 8];
        self.reader.read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn skip(&mut self, bytes: u64) -> Result<(), Stop> {
        let bytes = i64::try_from(bytes).map_err(|_| Stop)?;
        self.reader.seek(SeekFrom::Current(bytes))?;
        Ok(())
    }

    /// Bytes of one value of a fixed-size type; `None` for strings, arrays and unknown types.
    fn fixed_size(value_type: u32) -> Option<u64> {
        match value_type {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }

    /// Reads an integer value of a type candle takes an alignment from (8, 16 or 32 bits).
    fn small_integer(&mut self, value_type: u32) -> Result<Option<i64>, Stop> {
        let size = match value_type {
            0 | 1 => 1,
            2 | 3 => 2,
            4 | 5 => 4,
            _ => return Ok(None),
        };
        let mut bytes = [0u8; 4];
        self.reader.read_exact(&mut bytes[..size])?;
        let unsigned = u32::from_le_bytes(bytes);
        Ok(Some(match value_type {
            1 => i64::from(bytes[0] as i8),
            3 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
            5 => i64::from(unsigned as i32),
            _ => i64::from(unsigned),
        }))
    }

    fn skip_value(&mut self, value_type: u32, depth: usize) -> Result<(), Stop> {
        if let Some(size) = Self::fixed_size(value_type) {
            return self.skip(size);
        }
        match value_type {
            8 => {
                let length = self.length()?;
                self.skip(length)
            }
            9 if depth < MAX_DEPTH => {
                let element_type = self.u32()?;
                let count = self.length()?;
                if let Some(size) = Self::fixed_size(element_type) {
                    return self.skip(count.checked_mul(size).ok_or(Stop)?);
                }
                // Each string or array element takes at least a length: a count past the
                // end of the file stops at the first read that fails.
                for _ in 0..count {
                    self.skip_value(element_type, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(Stop),
        }
    }

    /// The alignment the header declares, if any, as candle would read it.
    fn alignment(&mut self) -> Result<Option<i64>, Stop> {
        let mut magic = [0u8; 4];
        self.reader.read_exact(&mut magic)?;
        if &magic != b"GGUF" {
            return Err(Stop);
        }
        self.wide = match self.u32()? {
            1 => false,
            2 | 3 => true,
            _ => return Err(Stop),
        };
        let _tensors = self.length()?;
        let entries = self.length()?;
        let mut alignment = None;
        for _ in 0..entries {
            let key_length = self.length()?;
            let mut key = Vec::new();
            if key_length <= MAX_KEY_BYTES {
                self.reader
                    .by_ref()
                    .take(key_length)
                    .read_to_end(&mut key)?;
            } else {
                self.skip(key_length)?;
            }
            // candle drops trailing NULs from strings, keys included.
            while key.last() == Some(&0) {
                key.pop();
            }
            let value_type = self.u32()?;
            if key == ALIGNMENT_KEY
                && let Some(value) = self.small_integer(value_type)?
            {
                alignment = Some(value);
                continue;
            }
            self.skip_value(value_type, 0)?;
        }
        Ok(alignment)
    }
}

/// Refuses a GGUF file whose `general.alignment` candle would divide by zero; leaves `file`
/// at its start.
pub(crate) fn check(file: &mut fs_err::File, path: &Path) -> Result<()> {
    let mut walker = Walker {
        reader: BufReader::new(&mut *file),
        wide: true,
    };
    let alignment = walker.alignment();
    drop(walker);
    file.seek(SeekFrom::Start(0))
        .map_err(|e| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
    if let Ok(Some(0)) = alignment {
        return Err(InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason: "general.alignment is 0 (it must be positive)".into(),
        });
    }
    Ok(())
}
