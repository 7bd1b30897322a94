//! The kernels crate's one error type.

/// A matrix could not be built from the bytes or values given.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The byte length does not match the format and shape.
    #[error("{format:?} matrix {rows}x{cols} needs {expected} bytes, got {got}")]
    WrongLength {
        /// The format.
        format: crate::WeightFormat,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A quantized format needs rows that are whole blocks.
    #[error("{format:?} rows must be a multiple of {block} long, got {cols}")]
    PartialBlock {
        /// The format.
        format: crate::WeightFormat,
        /// The block length.
        block: usize,
        /// The row length.
        cols: usize,
    },
    /// LoRA factors whose lengths do not match their rank and widths.
    #[error(
        "LoRA factors of rank {rank}, {input} inputs and {output} outputs need A of {} and B of {} values, got {a} and {b}",
        rank * input,
        output * rank
    )]
    LowRankShape {
        /// The rank.
        rank: usize,
        /// Input width.
        input: usize,
        /// Output width.
        output: usize,
        /// Values of A given.
        a: usize,
        /// Values of B given.
        b: usize,
    },
}
