//! Block-quantized formats, bit-compatible with GGUF/ggml, and 8-bit activation blocks.
//!
//! A block holds [`BLOCK`] consecutive values of one row. `Q4_1`: an f16 scale `d`, an f16
//! minimum `m` and 32 four-bit codes `q` (value = d·q + m; byte j holds element j in its low
//! nibble and element j + 16 in its high nibble). `Q8_0`: an f16 scale and 32 signed bytes
//! (value = d·q). Activations are quantized per block to [`BlockQ8`]: an f32 scale, the f32
//! `s = d·Σq` that the Q4_1 minimum multiplies, and 32 signed bytes; this is ggml's Q8_1 with
//! f32 scales. Parsing copies the bytes into typed blocks, so no alignment is assumed.

use half::f16;

/// Values per block.
pub const BLOCK: usize = 32;

/// The weight formats a [`crate::Matrix`] can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// 32-bit floats.
    F32,
    /// ggml Q4_1: 20 bytes per 32 values.
    Q4_1,
    /// ggml Q8_0: 34 bytes per 32 values.
    Q8_0,
}

impl WeightFormat {
    /// Bytes per row of `cols` values in the GGUF encoding.
    pub fn row_bytes(self, cols: usize) -> usize {
        match self {
            Self::F32 => cols * 4,
            Self::Q4_1 => cols / BLOCK * 20,
            Self::Q8_0 => cols / BLOCK * 34,
        }
    }
}

/// One Q4_1 block (ggml layout).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct BlockQ4_1 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Minimum, f16 bits.
    pub m: u16,
    /// Codes, two per byte.
    pub qs: [u8; 16],
}

/// One Q8_0 block (ggml layout).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale, f16 bits.
    pub d: u16,
    /// Codes.
    pub qs: [i8; 32],
}

/// One block of quantized activations.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(8))]
pub struct BlockQ8 {
    /// Scale.
    pub d: f32,
    /// `d · Σ qs`.
    pub s: f32,
    /// Codes.
    pub qs: [i8; 32],
}

impl BlockQ4_1 {
    /// Parses GGUF bytes (a whole number of 20-byte blocks).
    pub fn parse(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(20)
            .map(|b| {
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&b[4..20]);
                Self {
                    d: u16::from_le_bytes([b[0], b[1]]),
                    m: u16::from_le_bytes([b[2], b[3]]),
                    qs,
                }
            })
            .collect()
    }

    /// The 32 values.
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = f16::from_bits(self.d).to_f32();
        let m = f16::from_bits(self.m).to_f32();
        for (j, &byte) in self.qs.iter().enumerate() {
            out[j] = d * f32::from(byte & 0x0f) + m;
            out[j + 16] = d * f32::from(byte >> 4) + m;
        }
    }
}

impl BlockQ8_0 {
    /// Parses GGUF bytes (a whole number of 34-byte blocks).
    pub fn parse(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(34)
            .map(|b| {
                let mut qs = [0i8; 32];
                for (q, &byte) in qs.iter_mut().zip(&b[2..34]) {
                    *q = byte as i8;
                }
                Self {
                    d: u16::from_le_bytes([b[0], b[1]]),
                    qs,
                }
            })
            .collect()
    }

    /// Quantizes 32 values (round to nearest, scale = max |x| / 127), as ggml does.
    pub fn quantize(values: &[f32]) -> Self {
        let (d, qs) = quantize_block(values);
        Self {
            d: f16::from_f32(d).to_bits(),
            qs,
        }
    }

    /// The 32 values.
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = f16::from_bits(self.d).to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = d * f32::from(q);
        }
    }
}

fn quantize_block(values: &[f32]) -> (f32, [i8; 32]) {
    let amax = values.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let inverse = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; 32];
    for (q, v) in qs.iter_mut().zip(values) {
        *q = (v * inverse).round() as i8;
    }
    (d, qs)
}

impl BlockQ8 {
    /// Quantizes 32 activations.
    pub fn quantize(values: &[f32]) -> Self {
        let (d, qs) = quantize_block(values);
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        Self {
            d,
            s: d * sum as f32,
            qs,
        }
    }
}

/// A batch of activation rows, kept both as f32 (for f32 weights) and quantized per block (for
/// quantized weights; computed once, used by every matrix the rows are multiplied with).
pub struct Activations<'a> {
    values: &'a [f32],
    rows: usize,
    cols: usize,
    quantized: Vec<BlockQ8>,
}

impl<'a> Activations<'a> {
    /// `values` holds `rows` rows of `cols` values; `cols` must be a multiple of [`BLOCK`]
    /// when these rows meet quantized weights.
    pub fn new(values: &'a [f32], cols: usize) -> Self {
        let rows = values.len().checked_div(cols).unwrap_or(0);
        let quantized = if cols.is_multiple_of(BLOCK) {
            values.chunks_exact(BLOCK).map(BlockQ8::quantize).collect()
        } else {
            Vec::new()
        };
        Self {
            values,
            rows,
            cols,
            quantized,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row length.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r` as f32.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.values[r * self.cols..(r + 1) * self.cols]
    }

    /// Every row quantized, row after row.
    pub fn quantized(&self) -> &[BlockQ8] {
        &self.quantized
    }

    /// Row `r` quantized.
    pub fn quantized_row(&self, r: usize) -> &[BlockQ8] {
        let per_row = self.cols / BLOCK;
        &self.quantized[r * per_row..(r + 1) * per_row]
    }
}
