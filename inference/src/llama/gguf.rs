//! Loading a LLaMA decoder's weights from a GGUF file. Q4_1, Q8_0 and F32 matrices are taken
//! as stored; F16/BF16 become f32; every other quantized format (Q4_0, k-quants, ...) is
//! dequantized by candle and requantized to Q8_0, which keeps it within a fraction of its own
//! quantization error. Every tensor is checked against the configuration before it is read, and
//! an error names the file and the tensor. Sizes come from the configuration (metadata a file
//! may make up): they are computed with checked arithmetic and checked against the file's
//! length before anything is allocated.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::Device;
use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Content;
use provdb_kernels::{Matrix, WeightFormat};

use super::config::LlamaConfig;
use super::weights::{LayerWeights, LlamaWeights, block_shapes};
use crate::error::{InferenceError, Result};

struct Reader<'a> {
    content: &'a Content,
    file: &'a mut fs_err::File,
    path: &'a Path,
    /// The file's length: no tensor is read (or allocated) past it.
    file_bytes: u64,
}

impl Reader<'_> {
    fn bad(&self, name: &str, reason: impl std::fmt::Display) -> InferenceError {
        InferenceError::BadModelFile {
            path: self.path.to_path_buf(),
            reason: format!("tensor '{name}': {reason}"),
        }
    }

    fn info(
        &self,
        name: &str,
        dims: &[usize],
    ) -> Result<&candle_core::quantized::gguf_file::TensorInfo> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| self.bad(name, "missing"))?;
        if info.shape.dims() != dims {
            return Err(self.bad(
                name,
                format!("has shape {:?}, expected {dims:?}", info.shape.dims()),
            ));
        }
        Ok(info)
    }

    fn raw_bytes(
        &mut self,
        name: &str,
        dtype: GgmlDType,
        elements: usize,
        offset: u64,
    ) -> Result<Vec<u8>> {
        if !elements.is_multiple_of(dtype.block_size()) {
            return Err(self.bad(
                name,
                format!("{elements} elements do not fill {dtype:?} blocks"),
            ));
        }
        let size = (elements / dtype.block_size())
            .checked_mul(dtype.type_size())
            .ok_or_else(|| self.bad(name, "size overflows"))?;
        let start = self.content.tensor_data_offset.saturating_add(offset);
        if start.saturating_add(size as u64) > self.file_bytes {
            return Err(self.bad(
                name,
                format!(
                    "needs {size} bytes at {start}, past the end of the file ({} bytes)",
                    self.file_bytes
                ),
            ));
        }
        let mut bytes = vec![0u8; size];
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| self.bad(name, format!("cannot read {size} bytes at {start}: {e}")))?;
        Ok(bytes)
    }

    fn floats(&mut self, name: &str) -> Result<Vec<f32>> {
        let tensor = self
            .content
            .tensor(self.file, name, &Device::Cpu)
            .map_err(|e| self.bad(name, e))?;
        tensor
            .dequantize(&Device::Cpu)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.bad(name, e))
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        self.info(name, &[len])?;
        self.floats(name)
    }

    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        // Before candle sees the shape: its element count overflows unchecked (found by
        // fuzzing, fuzz/regressions/gguf/f16-matrix-element-count-overflows.gguf).
        let elements = rows
            .checked_mul(cols)
            .ok_or_else(|| self.bad(name, format!("{rows} x {cols} elements overflow")))?;
        let info = self.info(name, &[rows, cols])?;
        let (dtype, offset) = (info.ggml_dtype, info.offset);
        let format = match dtype {
            GgmlDType::Q4_1 => Some(WeightFormat::Q4_1),
            GgmlDType::Q8_0 => Some(WeightFormat::Q8_0),
            GgmlDType::F32 => Some(WeightFormat::F32),
            _ => None,
        };
        if let Some(format) = format {
            let bytes = self.raw_bytes(name, dtype, elements, offset)?;
            return Matrix::from_gguf_bytes(format, rows, cols, &bytes)
                .map_err(|e| self.bad(name, e));
        }
        let values = self.floats(name)?;
        match dtype {
            GgmlDType::F16 | GgmlDType::BF16 => Matrix::from_f32(rows, cols, values),
            _ => Matrix::quantize_q8_0(rows, cols, &values),
        }
        .map_err(|e| self.bad(name, e))
    }
}

/// Reads every weight of a GGUF LLaMA.
pub(crate) fn load_weights(
    content: &Content,
    file: &mut fs_err::File,
    path: &Path,
    config: &LlamaConfig,
) -> Result<LlamaWeights> {
    let file_bytes = file
        .metadata()
        .map_err(|e| InferenceError::BadModelFile {
            path: path.to_path_buf(),
            reason: format!("cannot read its length: {e}"),
        })?
        .len();
    let mut reader = Reader {
        content,
        file,
        path,
        file_bytes,
    };
    let (hidden, vocab) = (config.hidden, config.vocab);
    let embeddings = reader.matrix("token_embd.weight", vocab, hidden)?;
    let output = if content.tensor_infos.contains_key("output.weight") {
        Some(reader.matrix("output.weight", vocab, hidden)?)
    } else {
        None
    };
    let output_norm = reader.vector("output_norm.weight", hidden)?;
    // `layers` is the file's word: never reserve more than its tensors could fill (found by
    // fuzzing, fuzz/regressions/gguf/block-count-reserves-terabytes.gguf).
    let mut layers = Vec::with_capacity(config.layers.min(content.tensor_infos.len()));
    for layer in 0..config.layers {
        let attention_norm = reader.vector(&format!("blk.{layer}.attn_norm.weight"), hidden)?;
        let ffn_norm = reader.vector(&format!("blk.{layer}.ffn_norm.weight"), hidden)?;
        let shapes = block_shapes(config);
        let mut read = |i: usize| {
            let (short, [rows, cols]) = shapes[i];
            reader.matrix(&format!("blk.{layer}.{short}.weight"), rows, cols)
        };
        layers.push(LayerWeights {
            attention_norm,
            query: read(0)?,
            key: read(1)?,
            value: read(2)?,
            output: read(3)?,
            ffn_norm,
            gate: read(4)?,
            up: read(5)?,
            down: read(6)?,
        });
    }
    Ok(LlamaWeights {
        embeddings,
        layers,
        output_norm,
        output,
    })
}
