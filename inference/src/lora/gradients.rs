//! The gradient store of a trained adapter (`training-gradients.bin` beside its PEFT files):
//! every training record's projected LoRA gradient ([`crate::train::TrainingGradients`]), by
//! record id, from which an answer's training-data influence is scored.
//!
//! Format (little-endian): the magic `PVDBGRD1`; a `u32` header length and the header as JSON
//! ([`GradientHeader`]); `rows` record ids of 32 bytes; `rows` `u32` token counts (the
//! response tokens each record trained); `rows × dim` f32 values, row-major; and keccak256 of
//! everything before it.
//!
//! Invariants: a store is read whole and checked before use: the magic, the lengths, every value
//! finite, and the checksum; a damaged file is an error naming it, never a partial store. Its
//! header names the Merkle root of the adapter's training record ids, so it belongs to one
//! adapter's training set.

use std::path::Path;

use keccak_asm::Keccak256;
use serde::{Deserialize, Serialize};

use crate::error::{InferenceError, Result};
use crate::train::GradientProjection;

/// The file name in an adapter's folder.
pub const GRADIENTS_FILE: &str = "training-gradients.bin";
const MAGIC: &[u8; 8] = b"PVDBGRD1";
/// Largest header accepted.
const MAX_HEADER: usize = 1 << 16;

/// What a store says of itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientHeader {
    /// How the gradients were computed and compared: `logra-lora-cosine`.
    pub method: String,
    /// Their projection.
    pub projection: GradientProjection,
    /// Numbers per gradient.
    pub dim: usize,
    /// Records (rows).
    pub rows: usize,
    /// The Merkle root of the adapter's training record ids (0x-hex), as its provenance says.
    pub records_root: String,
}

/// The method the stores of this version hold.
pub const METHOD: &str = "logra-lora-cosine";

/// A gradient store in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientStore {
    /// Its header.
    pub header: GradientHeader,
    /// The record of each row.
    pub record_ids: Vec<[u8; 32]>,
    /// The tokens each row's record trained (its loss tokens).
    pub tokens: Vec<u32>,
    /// `rows × dim` values, row-major.
    pub values: Vec<f32>,
}

fn damaged(path: &Path, reason: impl Into<String>) -> InferenceError {
    InferenceError::Invalid(format!(
        "the gradient store {} is damaged: {}",
        path.display(),
        reason.into()
    ))
}

impl GradientStore {
    /// Row `index`'s gradient.
    pub fn row(&self, index: usize) -> &[f32] {
        let dim = self.header.dim;
        self.values
            .get(index * dim..(index + 1) * dim)
            .unwrap_or_default()
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let rows = self.header.rows;
        if self.record_ids.len() != rows
            || self.tokens.len() != rows
            || self.values.len() != rows * self.header.dim
        {
            return Err(InferenceError::Invalid(format!(
                "a gradient store of {rows} rows of {} holds {} ids, {} token counts and {} \
                 values",
                self.header.dim,
                self.record_ids.len(),
                self.tokens.len(),
                self.values.len()
            )));
        }
        let header =
            serde_json::to_vec(&self.header).map_err(|e| InferenceError::Invalid(e.to_string()))?;
        let mut out = Vec::with_capacity(
            48 + header.len() + 32 * self.record_ids.len() + 4 * self.values.len(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        self.record_ids
            .iter()
            .for_each(|id| out.extend_from_slice(id));
        self.tokens
            .iter()
            .for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
        self.values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        let sum: [u8; 32] = Keccak256::digest(&out).into();
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// Reads and checks the store at `path` (see the module docs).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = fs_err::read(path).map_err(|_| InferenceError::MissingFile {
            path: path.to_path_buf(),
            what: "the adapter's gradient store",
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses `bytes` (read from `path`, named in errors).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let Some((body, sum)) = bytes.split_last_chunk::<32>() else {
            return Err(damaged(path, "shorter than its checksum"));
        };
        let expected: [u8; 32] = Keccak256::digest(body).into();
        if &expected != sum {
            return Err(damaged(path, "its checksum does not match its content"));
        }
        let rest = body
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| damaged(path, "not a provdb gradient store (bad magic)"))?;
        let (length, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| damaged(path, "no header length"))?;
        let length = u32::from_le_bytes(*length) as usize;
        if length > MAX_HEADER || length > rest.len() {
            return Err(damaged(path, format!("a header of {length} bytes")));
        }
        let (header, rest) = rest.split_at(length);
        let header: GradientHeader = serde_json::from_slice(header)
            .map_err(|e| damaged(path, format!("unreadable header: {e}")))?;
        let ids_len = header.rows.checked_mul(36);
        let values_len = header
            .rows
            .checked_mul(header.dim)
            .and_then(|n| n.checked_mul(4));
        let (Some(ids_len), Some(values_len)) = (ids_len, values_len) else {
            return Err(damaged(path, "its sizes overflow"));
        };
        if rest.len() != ids_len + values_len {
            return Err(damaged(
                path,
                format!(
                    "{} bytes of rows, {} expected for {} rows of {}",
                    rest.len(),
                    ids_len + values_len,
                    header.rows,
                    header.dim
                ),
            ));
        }
        let (ids, values) = rest.split_at(ids_len);
        let (ids, tokens) = ids.split_at(header.rows * 32);
        let tokens = tokens
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let record_ids = ids
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        let values: Vec<f32> = values
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(damaged(path, "a value that is not a finite number"));
        }
        Ok(Self {
            header,
            record_ids,
            tokens,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> GradientStore {
        GradientStore {
            header: GradientHeader {
                method: METHOD.into(),
                projection: GradientProjection { seed: 1, width: 2 },
                dim: 3,
                rows: 2,
                records_root: "0x12".into(),
            },
            record_ids: vec![[1; 32], [2; 32]],
            tokens: vec![4, 7],
            values: vec![0.5, -1.0, 2.0, 0.0, 3.5, -0.25],
        }
    }

    #[test]
    fn a_store_round_trips_and_every_damage_is_named() {
        let path = Path::new("g.bin");
        let bytes = store().to_bytes().unwrap();
        let back = GradientStore::from_bytes(path, &bytes).unwrap();
        assert_eq!(back, store());
        assert_eq!(back.row(1), &[0.0, 3.5, -0.25]);
        for cut in [0, 10, bytes.len() - 1] {
            assert!(GradientStore::from_bytes(path, &bytes[..cut]).is_err());
        }
        for flip in [0, 20, bytes.len() - 40, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[flip] ^= 1;
            let err = GradientStore::from_bytes(path, &bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("g.bin") && err.contains("damaged"), "{err}");
        }
        let mut nan = store();
        nan.values[0] = f32::NAN;
        let err = GradientStore::from_bytes(path, &nan.to_bytes().unwrap()).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
    }
}
