//! `attributions`: the ledger entries the caller may see, streamed in ledger order. An
//! answer's entries are contiguous in the ledger; the scan holds one answer's entries at a
//! time and emits them only when the caller sees that answer ([`super::answers`]), so an
//! answer over a Datanet the caller may not read shows none of its rows, not even the model
//! owner's or the protocol's. An answer's charge (role `charge`, paid by its caller) is one of
//! its rows. A credit or refund, which belongs to no answer, shows only to its account and
//! admins.

use std::sync::{Arc, LazyLock};

use arrow_array::RecordBatch;
use arrow_array::builder::{Int64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Datanet, LedgerEntry, Role, StorageError, Store, hex32};

use super::answers::{AnswerAccess, touched};
use super::ledger::{WEI, finish, wei, wei_builder};
use crate::access::Caller;
use crate::filters::ScanFilter;
use crate::scan::{BatchSource, Batcher, LazyScanExec};

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

fn entries_to_batch(
    entries: &[LedgerEntry],
    access: &AnswerAccess,
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
    let mut amount = wei_builder(n);
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
        datanet.append_option(p.datanet_id.and_then(|id| access.name(id)));
        record.append_option(p.record_id.map(|r| r.to_string()));
        chunk.append_option(p.chunk_id);
        to.append_value(p.to.to_string());
        role.append_value(p.role.as_str());
        weight.append_value(p.weight_ppm);
        amount.append_value(wei(p.amount_wei));
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
    access: AnswerAccess,
}

impl AttributionsTable {
    pub(crate) fn new(store: &Arc<Store>, readable: &[Datanet], caller: Caller) -> Self {
        Self {
            store: Arc::clone(store),
            access: AnswerAccess::new(readable, caller),
        }
    }
}

/// Whether an entry of this role moves a prepaid balance (a credit, a charge, a refund).
fn is_movement(role: Role) -> bool {
    matches!(role, Role::Credit | Role::Charge | Role::Refund)
}

#[derive(Debug)]
struct AttributionsSource {
    store: Arc<Store>,
    access: AnswerAccess,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl AttributionsSource {
    /// Whether the caller sees the answer whose entries are `group`.
    fn visible(&self, group: &[LedgerEntry]) -> Result<bool, StorageError> {
        let Some(first) = group.first() else {
            return Ok(false);
        };
        let answer = self.store.answer(&first.answer_id)?;
        if answer.is_none() && group.iter().any(|e| is_movement(e.payment.role)) {
            // A credit or refund: its account's business (and an admin's).
            return Ok(self.access.sees_account(&first.payment.to));
        }
        Ok(self.access.sees(&touched(answer.as_ref(), group)))
    }

    /// Passes one answer's entries on when the caller sees it, and empties `group`.
    fn release(
        &self,
        group: &mut Vec<LedgerEntry>,
        batcher: &mut Batcher<'_, LedgerEntry>,
    ) -> Result<(), StorageError> {
        if self.visible(group)? {
            for entry in group.drain(..) {
                batcher
                    .push(entry)
                    .map_err(|e| StorageError::Internal(e.to_string()))?;
            }
        }
        group.clear();
        Ok(())
    }
}

impl BatchSource for AttributionsSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let to_batch = |rows: &[LedgerEntry]| {
            super::project_batch(
                entries_to_batch(rows, &self.access)?,
                self.projection.as_deref(),
            )
        };
        let mut batcher = Batcher::new(self.limit, &to_batch, emit);
        let mut group: Vec<LedgerEntry> = Vec::new();
        self.store.visit_ledger(1, &mut |entry| {
            if group
                .first()
                .is_some_and(|g| g.answer_id != entry.answer_id)
            {
                self.release(&mut group, &mut batcher)?;
            }
            group.push(entry);
            Ok(!batcher.done())
        })?;
        self.release(&mut group, &mut batcher)?;
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
            access: self.access.clone(),
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
