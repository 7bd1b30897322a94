//! `grants`: read grants of the Datanets the caller owns (a grantee sees that it may read a
//! Datanet through the Datanet being readable, not through this table).

use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Datanet, Grant, StorageError, Store};

use super::small::SmallTableSource;
use crate::access::Caller;
use crate::filters::ScanFilter;
use crate::scan::LazyScanExec;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("datanet", DataType::Utf8, false),
        Field::new("grantee", DataType::Utf8, false),
        Field::new("granted_by", DataType::Utf8, true),
        Field::new("granted_at", DataType::Int64, false),
    ]))
});

fn batch(store: &Store, owned: &[Datanet]) -> Result<RecordBatch, StorageError> {
    let mut rows: Vec<(&Datanet, Grant)> = Vec::new();
    for datanet in owned {
        rows.extend(store.grants(datanet.id)?.into_iter().map(|g| (datanet, g)));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|(d, _)| Some(d.id))
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|(d, _)| Some(d.name.clone()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|(_, g)| Some(g.grantee.to_string()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|(_, g)| g.granted_by.map(|a| a.to_string()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|(_, g)| Some(g.granted_at_ms))
                .collect::<Int64Array>(),
        ),
    ];
    RecordBatch::try_new(Arc::clone(&SCHEMA), columns)
        .map_err(|e| StorageError::Internal(format!("grants table: {e}")))
}

/// The `grants` table of one session.
#[derive(Debug)]
pub(crate) struct GrantsTable {
    store: Arc<Store>,
    owned: Arc<Vec<Datanet>>,
}

impl GrantsTable {
    pub(crate) fn new(store: &Arc<Store>, readable: &Arc<Vec<Datanet>>, caller: Caller) -> Self {
        let owned = readable
            .iter()
            .filter(|d| caller.owns(d))
            .cloned()
            .collect();
        Self {
            store: Arc::clone(store),
            owned: Arc::new(owned),
        }
    }
}

#[async_trait]
impl TableProvider for GrantsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&SCHEMA)
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
        let schema = super::projected(&SCHEMA, projection)?;
        let label = super::label("grants", &schema, &ScanFilter::default(), limit);
        let store = Arc::clone(&self.store);
        let owned = Arc::clone(&self.owned);
        let source = SmallTableSource::new(projection.cloned(), move || batch(&store, &owned));
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
