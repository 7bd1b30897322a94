//! One table per readable Datanet, named after it: the Datanet's own columns (its typed schema,
//! or just its text column when it has none), parsed from each record's canonical JSON, then
//! the provenance columns. Same pushdown as `records`.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{
    ColumnKind, Datanet, Record, StorageError, Store, records_schema, records_to_batch_projected,
};
use serde_json::Value;

use super::records::visit_records;
use crate::filters::{Pushable, ScanFilter};
use crate::scan::{BatchSource, Batcher, LazyScanExec};

/// Filters a typed table applies itself (provenance columns only).
const PUSHABLE: Pushable<'static> = Pushable {
    equality: &["record_id", "contributor", "status", "license"],
    ranges: &["created_at", "version", "sequence"],
};

/// Provenance columns of `records` that typed tables carry, by name.
const PROVENANCE: [&str; 10] = [
    "record_id",
    "contributor",
    "signature",
    "license",
    "created_at",
    "version",
    "supersedes",
    "quality",
    "status",
    "sequence",
];

/// The Datanet's own columns: (name, kind).
fn own_columns(datanet: &Datanet) -> Vec<(String, ColumnKind)> {
    match &datanet.schema {
        Some(columns) => columns
            .iter()
            .filter(|c| !PROVENANCE.contains(&c.name.as_str()))
            .map(|c| (c.name.clone(), c.kind))
            .collect(),
        None => vec![(datanet.text_column.clone(), ColumnKind::String)],
    }
}

fn data_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::String => DataType::Utf8,
        ColumnKind::Int => DataType::Int64,
        ColumnKind::Float => DataType::Float64,
        ColumnKind::Bool => DataType::Boolean,
    }
}

/// A Datanet's typed table.
#[derive(Debug)]
pub(crate) struct DatanetTable {
    store: Arc<Store>,
    datanet: Datanet,
    own: Vec<(String, ColumnKind)>,
    schema: SchemaRef,
    /// For each provenance column of the schema, its index in `records_schema()`.
    provenance_index: Vec<usize>,
}

impl DatanetTable {
    pub(crate) fn new(store: &Arc<Store>, datanet: Datanet) -> Self {
        let own = own_columns(&datanet);
        let records = records_schema();
        let mut fields: Vec<Field> = own
            .iter()
            .map(|(name, kind)| Field::new(name, data_type(*kind), true))
            .collect();
        let mut provenance_index = Vec::new();
        for name in PROVENANCE {
            if let Ok(index) = records.index_of(name) {
                fields.push(records.field(index).clone());
                provenance_index.push(index);
            }
        }
        Self {
            store: Arc::clone(store),
            datanet,
            own,
            schema: Arc::new(Schema::new(fields)),
            provenance_index,
        }
    }
}

#[derive(Debug)]
struct TypedSource {
    store: Arc<Store>,
    datanet: Datanet,
    own: Vec<(String, ColumnKind)>,
    schema: SchemaRef,
    provenance_index: Vec<usize>,
    filter: ScanFilter,
    projection: Vec<usize>,
    limit: Option<usize>,
}

/// One own column of `records`, from their JSON content (absent or mistyped values are null).
fn own_column(records: &[Record], name: &str, kind: ColumnKind) -> ArrayRef {
    let values: Vec<Option<Value>> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.content)
                .ok()
                .and_then(|mut v| v.get_mut(name).map(Value::take))
        })
        .collect();
    match kind {
        ColumnKind::String => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                })
                .collect::<StringArray>(),
        ),
        ColumnKind::Int => Arc::new(
            values
                .iter()
                .map(|v| v.as_ref().and_then(Value::as_i64))
                .collect::<Int64Array>(),
        ),
        ColumnKind::Float => Arc::new(
            values
                .iter()
                .map(|v| v.as_ref().and_then(Value::as_f64))
                .collect::<Float64Array>(),
        ),
        ColumnKind::Bool => Arc::new(
            values
                .iter()
                .map(|v| v.as_ref().and_then(Value::as_bool))
                .collect::<BooleanArray>(),
        ),
    }
}

impl TypedSource {
    fn to_batch(&self, records: &[Record]) -> Result<RecordBatch, StorageError> {
        let own_count = self.own.len();
        let provenance: Vec<usize> = self
            .projection
            .iter()
            .filter(|&&i| i >= own_count)
            .map(|&i| self.provenance_index[i - own_count])
            .collect();
        let provenance_batch =
            records_to_batch_projected(&self.datanet, records, Some(&provenance))?;
        let mut next_provenance = 0;
        let columns: Vec<ArrayRef> = self
            .projection
            .iter()
            .map(|&i| {
                if i < own_count {
                    let (name, kind) = &self.own[i];
                    own_column(records, name, *kind)
                } else {
                    next_provenance += 1;
                    Arc::clone(provenance_batch.column(next_provenance - 1))
                }
            })
            .collect();
        let schema = Arc::new(
            self.schema
                .project(&self.projection)
                .map_err(|e| StorageError::Internal(e.to_string()))?,
        );
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(records.len()));
        RecordBatch::try_new_with_options(schema, columns, &options)
            .map_err(|e| StorageError::Internal(format!("typed table: {e}")))
    }
}

impl BatchSource for TypedSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let to_batch = |rows: &[Record]| self.to_batch(rows);
        let mut batcher = Batcher::new(self.limit, &to_batch, emit);
        let datanets = [self.datanet.clone()];
        visit_records(&self.store, &datanets, &self.filter, &mut |_, record| {
            batcher.push(record)?;
            Ok(!batcher.done())
        })?;
        batcher.flush()
    }
}

#[async_trait]
impl TableProvider for DatanetTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // An own column never shares a provenance column's name (dropped at construction),
        // so these names always mean provenance.
        Ok(PUSHABLE.classify(filters))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = PUSHABLE.filter(filters);
        let projection: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&projection)?);
        let label = super::label(&self.datanet.name, &schema, &filter, limit);
        let source = TypedSource {
            store: Arc::clone(&self.store),
            datanet: self.datanet.clone(),
            own: self.own.clone(),
            schema: Arc::clone(&self.schema),
            provenance_index: self.provenance_index.clone(),
            filter,
            projection,
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
