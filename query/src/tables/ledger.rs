//! The audit tables' registration and the ledger-wide ones: `epochs` and `balances`
//! (cumulative per account and epoch), beside `attributions` and `citations` (their own files,
//! filtered per answer by [`super::answers`]). Amounts are `DECIMAL(76, 0)` wei
//! (`Decimal256`): every `u128` the ledger can hold fits (`DECIMAL(38, 0)` ends below
//! `u128::MAX` ≈ 3.4e38), so any stored amount reads, and `sum(amount_wei)` is exact and
//! cannot overflow (the sum of 2^120 amounts of `u128::MAX` still fits 76 digits).
//!
//! Access: `epochs` and `balances` are public: they are what the chain commits to (each
//! epoch's root and total) and what anyone may claim for an account. They include what answers
//! over private Datanets paid, as totals per epoch and account, never which Datanet, answer or
//! record it came from.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Decimal256Builder, Int64Builder, StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::datatypes::i256;
use provdb_storage::{StorageError, Store, hex32};

use super::small::{Spec, View};

pub(crate) const WEI: DataType = DataType::Decimal256(76, 0);

/// An amount of wei as its `DECIMAL(76, 0)` value: every `u128` fits, so no amount is
/// unreadable.
pub(crate) fn wei(amount: u128) -> i256 {
    i256::from_parts(amount, 0)
}

/// A builder of a wei column.
pub(crate) fn wei_builder(capacity: usize) -> Decimal256Builder {
    Decimal256Builder::with_capacity(capacity).with_data_type(WEI)
}

pub(crate) fn finish(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<RecordBatch, StorageError> {
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| StorageError::Internal(format!("audit table: {e}")))
}

static EPOCHS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("epoch", DataType::UInt64, false),
        Field::new("first_seq", DataType::UInt64, false),
        Field::new("end_seq", DataType::UInt64, false),
        Field::new("root", DataType::Utf8, false),
        Field::new("accounts", DataType::UInt64, false),
        Field::new("total_wei", WEI, false),
        Field::new("ledger_head", DataType::Utf8, false),
        Field::new("closed_at", DataType::Int64, false),
    ]))
});

fn epochs_batch(store: &Store, _view: &View) -> Result<RecordBatch, StorageError> {
    let epochs = store.epochs()?;
    let mut total = wei_builder(epochs.len());
    for e in &epochs {
        total.append_value(wei(e.total_wei));
    }
    let u64s = |f: fn(&provdb_storage::Epoch) -> u64| -> ArrayRef {
        let mut b = UInt64Builder::new();
        epochs.iter().for_each(|e| b.append_value(f(e)));
        Arc::new(b.finish())
    };
    let strings = |f: fn(&provdb_storage::Epoch) -> String| -> ArrayRef {
        let mut b = StringBuilder::new();
        epochs.iter().for_each(|e| b.append_value(f(e)));
        Arc::new(b.finish())
    };
    let mut closed = Int64Builder::new();
    epochs
        .iter()
        .for_each(|e| closed.append_value(e.closed_at_ms));
    finish(
        &EPOCHS,
        vec![
            u64s(|e| e.epoch),
            u64s(|e| e.first_seq),
            u64s(|e| e.end_seq),
            strings(|e| hex32(&e.root)),
            u64s(|e| e.accounts),
            Arc::new(total.finish()),
            strings(|e| hex32(&e.ledger_head)),
            Arc::new(closed.finish()),
        ],
    )
}

static BALANCES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("epoch", DataType::UInt64, false),
        Field::new("account", DataType::Utf8, false),
        Field::new("cumulative_wei", WEI, false),
    ]))
});

fn balances_batch(store: &Store, _view: &View) -> Result<RecordBatch, StorageError> {
    let mut epoch = UInt64Builder::new();
    let mut account = StringBuilder::new();
    let mut amount = wei_builder(0);
    for e in store.epochs()? {
        for (who, cumulative) in store.epoch_balances(e.epoch)? {
            epoch.append_value(e.epoch);
            account.append_value(who.to_string());
            amount.append_value(wei(cumulative));
        }
    }
    finish(
        &BALANCES,
        vec![
            Arc::new(epoch.finish()),
            Arc::new(account.finish()),
            Arc::new(amount.finish()),
        ],
    )
}

/// The small audit tables.
pub(crate) static TABLES: [Spec; 3] = [
    (
        "citations",
        &super::citations::CITATIONS,
        super::citations::citations_batch,
    ),
    ("epochs", &EPOCHS, epochs_batch),
    ("balances", &BALANCES, balances_batch),
];
