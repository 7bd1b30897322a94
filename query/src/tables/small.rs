//! [`SmallTable`]: a table computed whole at scan time from a list of Datanets (`datanets`,
//! `grants`), then projected.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Datanet, StorageError, Store};

use crate::filters::ScanFilter;
use crate::scan::{BatchSource, LazyScanExec};

/// Builds the whole table from the store and the session's Datanets.
pub(crate) type Compute = fn(&Store, &[Datanet]) -> Result<RecordBatch, StorageError>;

/// A small table of one session.
pub(crate) struct SmallTable {
    name: &'static str,
    schema: SchemaRef,
    store: Arc<Store>,
    datanets: Arc<Vec<Datanet>>,
    compute: Compute,
}

impl SmallTable {
    pub(crate) fn new(
        name: &'static str,
        schema: SchemaRef,
        store: &Arc<Store>,
        datanets: Arc<Vec<Datanet>>,
        compute: Compute,
    ) -> Self {
        Self {
            name,
            schema,
            store: Arc::clone(store),
            datanets,
            compute,
        }
    }
}

impl fmt::Debug for SmallTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallTable")
            .field("name", &self.name)
            .finish()
    }
}

/// One scan of a [`SmallTable`].
struct SmallSource {
    store: Arc<Store>,
    datanets: Arc<Vec<Datanet>>,
    compute: Compute,
    projection: Option<Vec<usize>>,
}

impl fmt::Debug for SmallSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallSource")
            .field("projection", &self.projection)
            .finish()
    }
}

impl BatchSource for SmallSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let batch = (self.compute)(&self.store, &self.datanets)?;
        let batch = super::project_batch(batch, self.projection.as_deref())?;
        emit(batch);
        Ok(())
    }
}

#[async_trait]
impl TableProvider for SmallTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
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
        let schema = super::projected(&self.schema, projection)?;
        let label = super::label(self.name, &schema, &ScanFilter::default(), limit);
        let source = SmallSource {
            store: Arc::clone(&self.store),
            datanets: Arc::clone(&self.datanets),
            compute: self.compute,
            projection: projection.cloned(),
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
