//! The bounds on one query ([`QueryLimits`]) and what enforces those DataFusion does not:
//!
//! - DataFusion's memory pool counts what operators buffer (sorts, joins, aggregations), not
//!   what a scalar function returns, so the functions whose output can be far larger than
//!   their input (`repeat`, `lpad`, `rpad`, `replace`, the list `range`/`generate_series`)
//!   are replaced in every session by [`CappedFunction`], which computes a bound on its output
//!   from the arguments and refuses a call over the query's memory limit before it allocates.
//! - A collected result ([`ResultBudget`]) is reserved in the query's memory pool batch by batch
//!   and capped at `max_result_bytes`, so a large result fails when it crosses the limit, not
//!   after it is held.
//!
//! Invariant: every refusal is a [`QueryError::Limit`] naming the limit and the setting that
//! raises it.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, FieldRef};
use datafusion::arrow::compute::{cast, kernels::length::length};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

use crate::error::{QueryError, Result};

/// Bounds on one query.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Wall-clock time for planning and execution.
    pub timeout: Duration,
    /// DataFusion's memory pool (sorts, joins, aggregations, the collected result); also the
    /// most one call of an expanding function (`repeat`, `lpad`, ...) may produce. Over it,
    /// the query fails.
    pub memory_bytes: usize,
    /// Rows returned at most (`None`: all); the output says when it was cut.
    pub max_rows: Option<usize>,
    /// Bytes of the collected result at most (the Arrow data of its rows); over it, the
    /// query fails.
    pub max_result_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            max_rows: None,
            max_result_bytes: 1 << 30,
        }
    }
}

/// The settings named in refusals.
pub(crate) const MEMORY_SETTING: &str = "QueryLimits::memory_bytes: `provdb sql --memory-mb`, \
                              `provdb serve --sql-memory-mb`";
const RESULT_SETTING: &str = "QueryLimits::max_result_bytes: `provdb sql --max-result-mb`, \
                              `provdb serve --sql-max-result-mb`";
pub(crate) const TIME_SETTING: &str =
    "QueryLimits::timeout: `provdb sql --timeout`, `provdb serve --sql-timeout-s`";

/// The functions whose output can be far larger than their arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Expanding {
    /// `repeat(text, n)`: `len(text) * n`.
    Repeat,
    /// `lpad`/`rpad(text, n [, fill])`: `n` characters of up to 4 bytes, or the text.
    Pad,
    /// `replace(text, from, to)`: every character boundary of `text` may become `to`.
    Replace,
    /// `range`/`generate_series(start, stop [, step])` as a list: 8 bytes per element.
    Series,
}

const EXPANDING: [(&str, Expanding); 6] = [
    ("repeat", Expanding::Repeat),
    ("lpad", Expanding::Pad),
    ("rpad", Expanding::Pad),
    ("replace", Expanding::Replace),
    ("range", Expanding::Series),
    ("generate_series", Expanding::Series),
];

/// Replaces the session's expanding functions with capped ones (those the session has).
pub(crate) fn cap_functions(context: &SessionContext, cap_bytes: usize) {
    for (name, kind) in EXPANDING {
        if let Ok(inner) = context.udf(name) {
            let capped = CappedFunction {
                inner,
                kind,
                cap_bytes: cap_bytes as u64,
            };
            context.register_udf(ScalarUDF::new_from_impl(capped));
        }
    }
}

/// A built-in function that refuses a call whose output would be over `cap_bytes`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CappedFunction {
    inner: Arc<ScalarUDF>,
    kind: Expanding,
    cap_bytes: u64,
}

impl ScalarUDFImpl for CappedFunction {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let bound = output_bound(self.kind, &args.args, args.number_rows)?;
        if bound > self.cap_bytes {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would produce {bound} bytes, over the query's memory limit of {} bytes \
                 ({MEMORY_SETTING})",
                self.inner.name(),
                self.cap_bytes
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

/// The most bytes one call produces over its `rows` rows (saturating).
fn output_bound(kind: Expanding, args: &[ColumnarValue], rows: usize) -> DfResult<u64> {
    let rows = rows.max(1);
    let column = |index: usize, of: fn(&ArrayRef) -> DfResult<Vec<u64>>| match args.get(index) {
        Some(value) => of(&value.to_array(rows)?),
        None => Ok(vec![0; rows]),
    };
    let per_row: Vec<u128> = match kind {
        Expanding::Repeat => {
            let (texts, counts) = (column(0, byte_lengths)?, column(1, integers)?);
            zip(&texts, &counts, |t, n| t * n)
        }
        Expanding::Pad => {
            let (texts, widths) = (column(0, byte_lengths)?, column(1, integers)?);
            zip(&texts, &widths, |t, n| t + 4 * n)
        }
        Expanding::Replace => {
            let (texts, to) = (column(0, byte_lengths)?, column(2, byte_lengths)?);
            zip(&texts, &to, |t, to| t + (t + 1) * to)
        }
        Expanding::Series => series_lengths(args, rows)?
            .into_iter()
            .map(|n| 8 * n)
            .collect(),
    };
    let total: u128 = per_row.iter().sum();
    Ok(u64::try_from(total).unwrap_or(u64::MAX))
}

fn zip(a: &[u64], b: &[u64], f: impl Fn(u128, u128) -> u128) -> Vec<u128> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f(u128::from(x), u128::from(y)))
        .collect()
}

/// Byte length of each value (0 for null, or for a type that is not text or binary).
fn byte_lengths(array: &ArrayRef) -> DfResult<Vec<u64>> {
    match array.data_type() {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => integers(&length(array.as_ref())?),
        _ => Ok(vec![0; array.len()]),
    }
}

/// Each value as a count (negative and null as 0; a type that is not an integer as 0).
fn integers(array: &ArrayRef) -> DfResult<Vec<u64>> {
    if !array.data_type().is_integer() {
        return Ok(vec![0; array.len()]);
    }
    let values = cast(array, &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                0
            } else {
                values.value(i).max(0) as u64
            }
        })
        .collect())
}

/// Elements of each row's series: `range(stop)`, `range(start, stop)` or `range(start, stop,
/// step)` over integers (other types, such as dates, are left to DataFusion: 0 here).
fn series_lengths(args: &[ColumnarValue], rows: usize) -> DfResult<Vec<u128>> {
    let mut columns = Vec::with_capacity(args.len());
    for value in args {
        let array = value.to_array(rows)?;
        if !array.data_type().is_integer() {
            return Ok(vec![0; rows]);
        }
        columns.push(cast(&array, &DataType::Int64)?);
    }
    let value = |column: usize, row: usize| -> i128 {
        let array = columns[column].as_primitive::<Int64Type>();
        if array.is_null(row) {
            0
        } else {
            i128::from(array.value(row))
        }
    };
    Ok((0..rows)
        .map(|row| {
            let (start, stop, step) = match columns.len() {
                1 => (0, value(0, row), 1),
                2 => (value(0, row), value(1, row), 1),
                3 => (value(0, row), value(1, row), value(2, row)),
                _ => (0, 0, 1),
            };
            if step == 0 {
                return 0;
            }
            ((stop - start) / step + 1).max(0) as u128
        })
        .collect())
}

/// The bytes of a result collected so far, reserved in the query's memory pool.
pub(crate) struct ResultBudget {
    reservation: MemoryReservation,
    bytes: usize,
    max_bytes: usize,
}

impl ResultBudget {
    pub(crate) fn new(pool: &Arc<dyn MemoryPool>, max_bytes: usize) -> Self {
        Self {
            reservation: MemoryConsumer::new("collected query result").register(pool),
            bytes: 0,
            max_bytes,
        }
    }

    /// Counts `batch` into the result; an error when the result crosses a limit.
    pub(crate) fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let size = slice_bytes(batch);
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.max_bytes {
            return Err(QueryError::Limit(format!(
                "the result is over {} bytes, the limit ({RESULT_SETTING}); add LIMIT or select \
                 fewer columns",
                self.max_bytes
            )));
        }
        self.reservation
            .try_grow(size)
            .map_err(QueryError::from_datafusion)
    }
}

/// Bytes of the rows `batch` holds (a slice counts only its rows, not the buffers it views).
fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use datafusion::scalar::ScalarValue;

    use super::*;

    fn text(s: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())))
    }

    fn int(n: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(n)))
    }

    #[test]
    fn bounds_cover_what_each_function_can_produce() {
        let bound = |kind, args: &[ColumnarValue]| output_bound(kind, args, 1).unwrap();
        assert_eq!(
            bound(Expanding::Repeat, &[text("ab"), int(1_000_000_000)]),
            2_000_000_000
        );
        assert_eq!(bound(Expanding::Repeat, &[text("ab"), int(-5)]), 0);
        assert_eq!(bound(Expanding::Pad, &[text("x"), int(10)]), 41);
        assert_eq!(
            bound(Expanding::Replace, &[text("aaa"), text("a"), text("bb")]),
            3 + 4 * 2
        );
        assert_eq!(bound(Expanding::Series, &[int(1), int(10)]), 80);
        assert_eq!(bound(Expanding::Series, &[int(10), int(1)]), 0);
        assert_eq!(bound(Expanding::Series, &[int(0), int(10), int(0)]), 0);
    }

    #[test]
    fn bounds_sum_over_the_rows_of_a_batch() {
        let texts = ColumnarValue::Array(Arc::new(arrow_array::StringArray::from(vec![
            Some("abc"),
            None,
            Some("d"),
        ])));
        assert_eq!(
            output_bound(Expanding::Repeat, &[texts, int(10)], 3).unwrap(),
            40
        );
    }
}
