//! `records`: every record version of the readable Datanets, with all provenance columns and
//! the canonical content. How a scan reaches the records is planned from its filters
//! ([`Access`]): a `record_id` filter is point lookups; a `contributor` filter reads the
//! contributor index (within the `created_at` bounds, if any); otherwise the scan reads the
//! whole `records` column family sequentially in id-range partitions when the allowed Datanets
//! hold at least half of the records, or their batch pages. Every filter is then checked on
//! each record in place ([`RecordFilter`]), before anything is copied, and only the projected
//! columns are built. Rows come in no particular order.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{
    Address, Datanet, Record, RecordId, RecordView, RecordsBatchBuilder, Store, records_schema,
};

use super::record_filter::RecordFilter;
use crate::error::QueryError;
use crate::filters::{Pushable, ScanFilter};
use crate::scan::{BATCH_ROWS, BatchSource, LazyScanExec};

pub(crate) const PUSHABLE: Pushable<'static> = Pushable {
    equality: &[
        "record_id",
        "datanet",
        "datanet_id",
        "contributor",
        "status",
        "license",
    ],
    ranges: &["created_at", "datanet_id", "version", "sequence"],
};

/// The readable Datanets a filter can still match.
pub(crate) fn candidate_datanets(readable: &[Datanet], filter: &ScanFilter) -> Vec<Datanet> {
    RecordFilter::new(readable, filter).datanets().to_vec()
}

/// Visits the records of `datanets` that pass `filter` as owned records (for tables that need
/// a record's chunk ranges), by point lookup when `record_id` is constrained to a set, else by
/// scanning each Datanet; stops when `visit` returns false.
pub(crate) fn visit_records(
    store: &Store,
    datanets: &[Datanet],
    filter: &ScanFilter,
    visit: &mut dyn FnMut(&Datanet, Record) -> crate::Result<bool>,
) -> crate::Result<()> {
    let filter = RecordFilter::new(datanets, filter);
    if let Some(ids) = filter.record_ids() {
        for id in &ids {
            let Some(record) = store.record(id)? else {
                continue;
            };
            if let Some(datanet) = filter.admit(&record.view())
                && !visit(datanet, record)?
            {
                return Ok(());
            }
        }
        return Ok(());
    }
    for datanet in filter.datanets() {
        for record in store.scan_records(datanet.id)? {
            let record = record?;
            if let Some(datanet) = filter.admit(&record.view())
                && !visit(datanet, record)?
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// How a `records` scan reaches its rows; chosen when the scan is planned.
#[derive(Debug)]
enum Access {
    /// Point lookups of the ids the filter names.
    ById(Vec<RecordId>),
    /// The contributor index, per allowed Datanet and named contributor, within the
    /// `created_at` bounds.
    ByContributor(Vec<Address>),
    /// The whole `records` column family in id order, in `parts` slices scanned in parallel:
    /// when the allowed Datanets hold at least half of all records, reading the others too
    /// costs less than one random read per wanted record.
    Everything { parts: usize },
    /// Each allowed Datanet's batch pages, `parts` callers taking every `parts`-th page.
    Pages { parts: usize },
}

impl Access {
    fn plan(store: &Store, filter: &RecordFilter, parts: usize) -> crate::Result<Self> {
        if let Some(ids) = filter.record_ids() {
            return Ok(Self::ById(ids));
        }
        if let Some(contributors) = filter.contributors() {
            return Ok(Self::ByContributor(contributors.to_vec()));
        }
        let mut wanted = 0u64;
        for datanet in filter.datanets() {
            wanted += store.stats(datanet.id)?.records;
        }
        let parts = parts.max(1);
        if wanted > 0 && wanted * 2 >= store.total_records()? {
            Ok(Self::Everything { parts })
        } else {
            Ok(Self::Pages { parts })
        }
    }

    fn partitions(&self) -> usize {
        match self {
            Self::ById(_) | Self::ByContributor(_) => 1,
            Self::Everything { parts } | Self::Pages { parts } => *parts,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::ById(ids) => format!("record_id lookups ({})", ids.len()),
            Self::ByContributor(who) => format!("contributor index ({})", who.len()),
            Self::Everything { .. } => "all records in id order".into(),
            Self::Pages { .. } => "batch pages".into(),
        }
    }
}

/// The `records` table of one session.
#[derive(Debug)]
pub(crate) struct RecordsTable {
    store: Arc<Store>,
    readable: Arc<Vec<Datanet>>,
}

impl RecordsTable {
    pub(crate) fn new(store: &Arc<Store>, readable: &Arc<Vec<Datanet>>) -> Self {
        Self {
            store: Arc::clone(store),
            readable: Arc::clone(readable),
        }
    }
}

#[derive(Debug)]
struct RecordsSource {
    store: Arc<Store>,
    filter: RecordFilter,
    access: Access,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl RecordsSource {
    /// Runs `access` for one partition, visiting every stored record it reaches.
    fn each_record(
        &self,
        partition: usize,
        visit: &mut dyn FnMut(RecordView<'_>) -> crate::Result<bool>,
    ) -> crate::Result<()> {
        let store = &self.store;
        match &self.access {
            Access::ById(ids) => store.visit_records_by_id(ids, visit),
            Access::ByContributor(contributors) => {
                let (from, to) = self.filter.created_at();
                let mut stopped = false;
                for datanet in self.filter.datanets() {
                    for contributor in contributors {
                        store.visit_contributor_records(
                            datanet.id,
                            contributor,
                            from,
                            to,
                            &mut |record| {
                                let go_on = visit(record)?;
                                stopped = !go_on;
                                Ok::<bool, QueryError>(go_on)
                            },
                        )?;
                        if stopped {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            }
            Access::Everything { parts } => store.visit_all_records(partition, *parts, visit),
            Access::Pages { parts } => {
                let mut stopped = false;
                for datanet in self.filter.datanets() {
                    store.visit_datanet_records(datanet.id, partition, *parts, &mut |record| {
                        let go_on = visit(record)?;
                        stopped = !go_on;
                        Ok::<bool, QueryError>(go_on)
                    })?;
                    if stopped {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

impl BatchSource for RecordsSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        for partition in 0..self.partitions() {
            self.produce_partition(partition, emit)?;
        }
        Ok(())
    }

    fn partitions(&self) -> usize {
        self.access.partitions()
    }

    fn produce_partition(
        &self,
        partition: usize,
        emit: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> crate::Result<()> {
        let mut remaining = self.limit.unwrap_or(usize::MAX);
        if remaining == 0 {
            return Ok(());
        }
        let mut builder = RecordsBatchBuilder::new(self.projection.as_deref(), BATCH_ROWS)?;
        let mut consumer_gone = false;
        self.each_record(partition, &mut |record| {
            let Some(datanet) = self.filter.admit(&record) else {
                return Ok(true);
            };
            builder.append(&datanet.name, &record)?;
            remaining -= 1;
            if builder.len() >= BATCH_ROWS || remaining == 0 {
                consumer_gone = !emit(builder.finish()?);
            }
            Ok(remaining > 0 && !consumer_gone)
        })?;
        if !builder.is_empty() && !consumer_gone {
            emit(builder.finish()?);
        }
        Ok(())
    }
}

#[async_trait]
impl TableProvider for RecordsTable {
    fn schema(&self) -> SchemaRef {
        records_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(PUSHABLE.classify(filters))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let scan_filter = PUSHABLE.filter(filters);
        let schema = super::projected(&records_schema(), projection)?;
        let filter = RecordFilter::new(&self.readable, &scan_filter);
        let parts = state.config().target_partitions();
        let access = Access::plan(&self.store, &filter, parts)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let label = format!(
            "{}, access={}",
            super::label("records", &schema, &scan_filter, limit),
            access.describe()
        );
        let source = RecordsSource {
            store: Arc::clone(&self.store),
            filter,
            access,
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
