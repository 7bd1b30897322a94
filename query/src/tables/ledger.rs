//! The audit tables: `attributions` (ledger entries, streamed in ledger order), `citations`
//! (the sources each answer cited or used), `epochs` and `balances` (cumulative per account and
//! epoch). Amounts are `DECIMAL(38, 0)` wei, so `sum(amount_wei)` is exact.
//!
//! Access: an entry or citation that names a Datanet the caller may not read is not in the
//! caller's tables (its record and chunk would leak otherwise); fixed shares (model owner,
//! protocol) name no Datanet and are visible to all. `epochs` and `balances` are public: they
//! are exactly what the chain commits to.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Decimal128Builder, Float32Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Datanet, DatanetId, LedgerEntry, StorageError, Store, hex32};

use super::small::SmallTable;
use crate::filters::ScanFilter;
use crate::scan::{BatchSource, Batcher, LazyScanExec};

const WEI: DataType = DataType::Decimal128(38, 0);

fn wei(amount: u128) -> Result<i128, StorageError> {
    i128::try_from(amount)
        .ok()
        .filter(|a| *a < 10i128.pow(38))
        .ok_or_else(|| StorageError::Invalid(format!("{amount} wei does not fit DECIMAL(38, 0)")))
}

fn finish(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, StorageError> {
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| StorageError::Internal(format!("audit table: {e}")))
}

static ATTRIBUTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("answer_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("caller", DataType::Utf8, true),
        Field::new("datanet_id", DataType::UInt32, true),
        Field::new("datanet", DataType::Utf8, true),
        Field::new("record_id", DataType::Utf8, true),
        Field::new("chunk_id", DataType::UInt64, true),
        Field::new("contributor", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("weight_ppm", DataType::UInt32, false),
        Field::new("amount_wei", WEI, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("adapter", DataType::Utf8, true),
        Field::new("prev_hash", DataType::Utf8, false),
        Field::new("entry_hash", DataType::Utf8, false),
    ]))
});

fn names(readable: &[Datanet]) -> HashMap<DatanetId, String> {
    readable.iter().map(|d| (d.id, d.name.clone())).collect()
}

fn entries_to_batch(
    entries: &[LedgerEntry],
    names: &HashMap<DatanetId, String>,
) -> Result<RecordBatch, StorageError> {
    let n = entries.len();
    let mut seq = UInt64Builder::with_capacity(n);
    let mut answer = StringBuilder::new();
    let mut ts = Int64Builder::with_capacity(n);
    let mut caller = StringBuilder::new();
    let mut datanet_id = UInt32Builder::with_capacity(n);
    let mut datanet = StringBuilder::new();
    let mut record = StringBuilder::new();
    let mut chunk = UInt64Builder::with_capacity(n);
    let mut to = StringBuilder::new();
    let mut role = StringBuilder::new();
    let mut weight = UInt32Builder::with_capacity(n);
    let mut amount = Decimal128Builder::with_capacity(n).with_data_type(WEI);
    let mut model = StringBuilder::new();
    let mut adapter = StringBuilder::new();
    let mut prev = StringBuilder::new();
    let mut hash = StringBuilder::new();
    for e in entries {
        let p = &e.payment;
        seq.append_value(e.seq);
        answer.append_value(e.answer_id.to_string());
        ts.append_value(e.ts_ms);
        caller.append_option(e.caller.map(|a| a.to_string()));
        datanet_id.append_option(p.datanet_id);
        datanet.append_option(p.datanet_id.and_then(|id| names.get(&id)));
        record.append_option(p.record_id.map(|r| r.to_string()));
        chunk.append_option(p.chunk_id);
        to.append_value(p.to.to_string());
        role.append_value(p.role.as_str());
        weight.append_value(p.weight_ppm);
        amount.append_value(wei(p.amount_wei)?);
        model.append_value(&e.model);
        adapter.append_option(e.adapter.as_deref());
        prev.append_value(hex32(&e.prev_hash));
        hash.append_value(hex32(&e.entry_hash));
    }
    finish(
        &ATTRIBUTIONS,
        vec![
            Arc::new(seq.finish()),
            Arc::new(answer.finish()),
            Arc::new(ts.finish()),
            Arc::new(caller.finish()),
            Arc::new(datanet_id.finish()),
            Arc::new(datanet.finish()),
            Arc::new(record.finish()),
            Arc::new(chunk.finish()),
            Arc::new(to.finish()),
            Arc::new(role.finish()),
            Arc::new(weight.finish()),
            Arc::new(amount.finish()),
            Arc::new(model.finish()),
            Arc::new(adapter.finish()),
            Arc::new(prev.finish()),
            Arc::new(hash.finish()),
        ],
    )
}

/// `attributions`: the ledger entries the caller may see, streamed in ledger order.
#[derive(Debug)]
pub(crate) struct AttributionsTable {
    store: Arc<Store>,
    readable: Arc<Vec<Datanet>>,
}

impl AttributionsTable {
    pub(crate) fn new(store: &Arc<Store>, readable: &Arc<Vec<Datanet>>) -> Self {
        Self {
            store: Arc::clone(store),
            readable: Arc::clone(readable),
        }
    }
}

#[derive(Debug)]
struct AttributionsSource {
    store: Arc<Store>,
    names: HashMap<DatanetId, String>,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl BatchSource for AttributionsSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let to_batch = |rows: &[LedgerEntry]| {
            super::project_batch(
                entries_to_batch(rows, &self.names)?,
                self.projection.as_deref(),
            )
        };
        let mut batcher = Batcher::new(self.limit, &to_batch, emit);
        self.store.visit_ledger(1, &mut |entry| {
            let visible = entry
                .payment
                .datanet_id
                .is_none_or(|id| self.names.contains_key(&id));
            if visible {
                batcher
                    .push(entry)
                    .map_err(|e| StorageError::Internal(e.to_string()))?;
            }
            Ok(!batcher.done())
        })?;
        batcher.flush()
    }
}

#[async_trait]
impl TableProvider for AttributionsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&ATTRIBUTIONS)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = super::projected(&ATTRIBUTIONS, projection)?;
        let label = super::label("attributions", &schema, &ScanFilter::default(), limit);
        let source = AttributionsSource {
            store: Arc::clone(&self.store),
            names: names(&self.readable),
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}

static CITATIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("answer_id", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("caller", DataType::Utf8, true),
        Field::new("question", DataType::Utf8, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("attribution", DataType::Utf8, false),
        Field::new("marker", DataType::UInt32, false),
        Field::new("chunk_id", DataType::UInt64, false),
        Field::new("record_id", DataType::Utf8, false),
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("datanet", DataType::Utf8, false),
        Field::new("contributor", DataType::Utf8, false),
        Field::new("retrieval_score", DataType::Float32, false),
        Field::new("weight_ppm", DataType::UInt32, false),
    ]))
});

fn citations_batch(store: &Store, readable: &[Datanet]) -> Result<RecordBatch, StorageError> {
    let names = names(readable);
    let mut answer = StringBuilder::new();
    let mut ts = Int64Builder::new();
    let mut caller = StringBuilder::new();
    let mut question = StringBuilder::new();
    let mut model = StringBuilder::new();
    let mut attribution = StringBuilder::new();
    let mut marker = UInt32Builder::new();
    let mut chunk = UInt64Builder::new();
    let mut record = StringBuilder::new();
    let mut datanet_id = UInt32Builder::new();
    let mut datanet = StringBuilder::new();
    let mut contributor = StringBuilder::new();
    let mut score = Float32Builder::new();
    let mut weight = UInt32Builder::new();
    store.visit_answers(&mut |a| {
        for c in &a.citations {
            let Some(name) = names.get(&c.datanet_id) else {
                continue;
            };
            answer.append_value(a.answer_id.to_string());
            ts.append_value(a.ts_ms);
            caller.append_option(a.caller.map(|x| x.to_string()));
            question.append_value(&a.question);
            model.append_value(&a.model);
            attribution.append_value(&a.attribution);
            marker.append_value(c.marker);
            chunk.append_value(c.chunk_id);
            record.append_value(c.record_id.to_string());
            datanet_id.append_value(c.datanet_id);
            datanet.append_value(name);
            contributor.append_value(c.contributor.to_string());
            score.append_value(c.retrieval_score);
            weight.append_value(c.weight_ppm);
        }
        Ok(true)
    })?;
    finish(
        &CITATIONS,
        vec![
            Arc::new(answer.finish()),
            Arc::new(ts.finish()),
            Arc::new(caller.finish()),
            Arc::new(question.finish()),
            Arc::new(model.finish()),
            Arc::new(attribution.finish()),
            Arc::new(marker.finish()),
            Arc::new(chunk.finish()),
            Arc::new(record.finish()),
            Arc::new(datanet_id.finish()),
            Arc::new(datanet.finish()),
            Arc::new(contributor.finish()),
            Arc::new(score.finish()),
            Arc::new(weight.finish()),
        ],
    )
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

fn epochs_batch(store: &Store, _readable: &[Datanet]) -> Result<RecordBatch, StorageError> {
    let epochs = store.epochs()?;
    let mut total = Decimal128Builder::new().with_data_type(WEI);
    for e in &epochs {
        total.append_value(wei(e.total_wei)?);
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

fn balances_batch(store: &Store, _readable: &[Datanet]) -> Result<RecordBatch, StorageError> {
    let mut epoch = UInt64Builder::new();
    let mut account = StringBuilder::new();
    let mut amount = Decimal128Builder::new().with_data_type(WEI);
    for e in store.epochs()? {
        for (who, cumulative) in store.epoch_balances(e.epoch)? {
            epoch.append_value(e.epoch);
            account.append_value(who.to_string());
            amount.append_value(wei(cumulative)?);
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

/// The small audit tables of one session.
pub(crate) fn small_tables(
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
) -> [(&'static str, SmallTable); 3] {
    let table = |name, schema: &LazyLock<SchemaRef>, compute| {
        (
            name,
            SmallTable::new(
                name,
                Arc::clone(schema),
                store,
                Arc::clone(readable),
                compute,
            ),
        )
    };
    [
        table("citations", &CITATIONS, citations_batch),
        table("epochs", &EPOCHS, epochs_batch),
        table("balances", &BALANCES, balances_batch),
    ]
}
