//! [`SmallTable`]: a table computed whole at scan time from the session's [`View`] (a list of
//! Datanets and the caller: `datanets`, `grants`, `citations`, `epochs`, `balances`), then
//! projected.

use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Datanet, StorageError, Store};

use crate::access::Caller;
use crate::filters::ScanFilter;
use crate::scan::{BatchSource, LazyScanExec};

/// What a small table is computed for: the Datanets it covers and the session's caller.
#[derive(Clone, Debug)]
pub(crate) struct View {
    /// The Datanets (the readable ones, or a subset such as the caller's own).
    pub(crate) datanets: Arc<Vec<Datanet>>,
    /// Who runs the query.
    pub(crate) caller: Caller,
}

/// Builds the whole table from the store and the session's view.
pub(crate) type Compute = fn(&Store, &View) -> Result<RecordBatch, StorageError>;

/// A small table of one session.
pub(crate) struct SmallTable {
    name: &'static str,
    schema: SchemaRef,
    store: Arc<Store>,
    view: View,
    compute: Compute,
}

impl SmallTable {
    pub(crate) fn new(
        name: &'static str,
        schema: SchemaRef,
        store: &Arc<Store>,
        view: View,
        compute: Compute,
    ) -> Self {
        Self {
            name,
            schema,
            store: Arc::clone(store),
            view,
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
    view: View,
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
        let batch = (self.compute)(&self.store, &self.view)?;
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
            view: self.view.clone(),
            compute: self.compute,
            projection: projection.cloned(),
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}

/// One small table to register: its name, schema and how it is computed.
pub(crate) type Spec = (&'static str, &'static LazyLock<SchemaRef>, Compute);

/// The small tables `specs` names, for one session's store, readable Datanets and caller.
pub(crate) fn session_tables<const N: usize>(
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
    caller: Caller,
    specs: [Spec; N],
) -> [(&'static str, SmallTable); N] {
    let view = View {
        datanets: Arc::clone(readable),
        caller,
    };
    specs.map(|(name, schema, compute)| {
        let table = SmallTable::new(name, Arc::clone(schema), store, view.clone(), compute);
        (name, table)
    })
}
