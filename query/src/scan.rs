//! [`LazyScanExec`]: the execution plan every provdb table scans with. Its source produces
//! record batches from storage on a blocking thread, one at a time into a bounded channel, so
//! a scan holds at most a couple of batches in memory and stops as soon as the consumer is
//! done (a `LIMIT` satisfied, the query cancelled). A source may split its scan into
//! partitions (disjoint parts of the rows), which DataFusion runs on parallel threads, each
//! with its own channel. `EXPLAIN` prints the table, the projected columns, the filters the
//! source applies itself, the limit and the partitions.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

/// Rows per produced batch.
pub(crate) const BATCH_ROWS: usize = 8192;

/// Produces a table's rows as batches, in order, until done or `emit` returns false.
pub(crate) trait BatchSource: Send + Sync + fmt::Debug {
    /// Runs the scan on the calling (blocking) thread.
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()>;

    /// Disjoint parts the rows are split into (each at most `LIMIT` rows long).
    fn partitions(&self) -> usize {
        1
    }

    /// Runs part `partition` of the scan; a source of one partition just `produce`s.
    fn produce_partition(
        &self,
        partition: usize,
        emit: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> crate::Result<()> {
        debug_assert_eq!(partition, 0, "a source of one partition");
        self.produce(emit)
    }
}

/// A scan of one provdb table.
#[derive(Debug)]
pub(crate) struct LazyScanExec {
    source: Arc<dyn BatchSource>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    label: String,
}

impl LazyScanExec {
    /// A scan producing `schema` (the projected schema) from `source`; `label` is what
    /// `EXPLAIN` shows.
    pub(crate) fn new(source: Arc<dyn BatchSource>, schema: SchemaRef, label: String) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(source.partitions().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            source,
            schema,
            properties: Arc::new(properties),
            label,
        }
    }
}

impl DisplayAs for LazyScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProvdbScan: {}", self.label)?;
        match self.source.partitions() {
            0 | 1 => Ok(()),
            n => write!(f, ", partitions={n}"),
        }
    }
}

impl ExecutionPlan for LazyScanExec {
    fn name(&self) -> &str {
        "ProvdbScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _visit: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a provdb scan has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let partitions = self.source.partitions().max(1);
        if partition >= partitions {
            return Err(DataFusionError::Internal(format!(
                "a provdb scan of {partitions} partition(s), asked for {partition}"
            )));
        }
        let mut builder = RecordBatchReceiverStream::builder(Arc::clone(&self.schema), 2);
        let sender = builder.tx();
        let source = Arc::clone(&self.source);
        builder.spawn_blocking(move || {
            source
                .produce_partition(partition, &mut |batch| {
                    sender.blocking_send(Ok(batch)).is_ok()
                })
                .map_err(|e| DataFusionError::External(Box::new(e)))
        });
        Ok(builder.build())
    }
}

/// Collects rows and emits them as batches of [`BATCH_ROWS`], stopping at `limit` rows.
pub(crate) struct Batcher<'a, T> {
    rows: Vec<T>,
    remaining: Option<usize>,
    to_batch: &'a dyn Fn(&[T]) -> Result<RecordBatch, provdb_storage::StorageError>,
    emit: &'a mut dyn FnMut(RecordBatch) -> bool,
    stopped: bool,
}

impl<'a, T> Batcher<'a, T> {
    pub(crate) fn new(
        limit: Option<usize>,
        to_batch: &'a dyn Fn(&[T]) -> Result<RecordBatch, provdb_storage::StorageError>,
        emit: &'a mut dyn FnMut(RecordBatch) -> bool,
    ) -> Self {
        Self {
            rows: Vec::new(),
            remaining: limit,
            to_batch,
            emit,
            stopped: limit == Some(0),
        }
    }

    /// Whether the scan should stop (limit reached or consumer gone).
    pub(crate) fn done(&self) -> bool {
        self.stopped
    }

    /// Adds a row; flushes a full batch.
    pub(crate) fn push(&mut self, row: T) -> crate::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.rows.push(row);
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                self.flush()?;
                self.stopped = true;
                return Ok(());
            }
        }
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Emits what is buffered.
    pub(crate) fn flush(&mut self) -> crate::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = (self.to_batch)(&self.rows)?;
        self.rows.clear();
        if !(self.emit)(batch) {
            self.stopped = true;
        }
        Ok(())
    }
}
