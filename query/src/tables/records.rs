//! `records`: every record version of the readable Datanets, with all provenance columns and
//! the canonical content. A `record_id` filter is a point lookup; a `datanet`/`datanet_id`
//! filter limits the scan to those Datanets' key ranges; `contributor`, `status`, `license`,
//! `created_at`, `version` and `sequence` filters are applied in the scan, before any Arrow
//! array is built.

use std::str::FromStr;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{
    Datanet, Record, RecordId, StorageError, Store, records_schema, records_to_batch_projected,
};

use crate::filters::{Pushable, ScanFilter};
use crate::scan::{BatchSource, Batcher, LazyScanExec};

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

/// Whether `record` (of `datanet`) passes the provenance filters.
pub(crate) fn passes(filter: &ScanFilter, datanet: &Datanet, record: &Record) -> bool {
    filter.allows("datanet", &datanet.name)
        && filter.allows_int("datanet_id", i64::from(record.datanet_id))
        && filter.allows("record_id", &record.record_id.to_string())
        && filter.allows("contributor", &record.contributor.to_string())
        && filter.allows("status", record.status.as_str())
        && filter.allows("license", &record.license)
        && filter.allows_int("created_at", record.created_at_ms)
        && filter.allows_int("version", i64::from(record.version))
        && filter.allows_int(
            "sequence",
            i64::try_from(record.sequence).unwrap_or(i64::MAX),
        )
}

/// The readable Datanets a filter can still match.
pub(crate) fn candidate_datanets(readable: &[Datanet], filter: &ScanFilter) -> Vec<Datanet> {
    readable
        .iter()
        .filter(|d| {
            filter.allows("datanet", &d.name) && filter.allows_int("datanet_id", i64::from(d.id))
        })
        .cloned()
        .collect()
}

/// Visits the records of `datanets` that pass `filter`, by point lookup when `record_id` is
/// constrained to a set, else by scanning each Datanet; stops when `visit` returns false.
pub(crate) fn visit_records(
    store: &Store,
    datanets: &[Datanet],
    filter: &ScanFilter,
    visit: &mut dyn FnMut(&Datanet, Record) -> crate::Result<bool>,
) -> crate::Result<()> {
    if let Some(ids) = filter.values("record_id") {
        for id in &ids {
            let Ok(id) = RecordId::from_str(id) else {
                continue;
            };
            let Some(record) = store.record(&id)? else {
                continue;
            };
            let Some(datanet) = datanets.iter().find(|d| d.id == record.datanet_id) else {
                continue;
            };
            if passes(filter, datanet, &record) && !visit(datanet, record)? {
                return Ok(());
            }
        }
        return Ok(());
    }
    for datanet in datanets {
        for record in store.scan_records(datanet.id)? {
            let record = record?;
            if passes(filter, datanet, &record) && !visit(datanet, record)? {
                return Ok(());
            }
        }
    }
    Ok(())
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
    datanets: Vec<Datanet>,
    filter: ScanFilter,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl BatchSource for RecordsSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let datanets = &self.datanets;
        let to_batch = |rows: &[Record]| {
            let datanet = rows
                .first()
                .and_then(|r| datanets.iter().find(|d| d.id == r.datanet_id))
                .ok_or_else(|| {
                    StorageError::Internal("a batch of records without its datanet".into())
                })?;
            records_to_batch_projected(datanet, rows, self.projection.as_deref())
        };
        let mut batcher = Batcher::new(self.limit, &to_batch, emit);
        let mut current = None;
        visit_records(
            &self.store,
            datanets,
            &self.filter,
            &mut |datanet, record| {
                if current != Some(datanet.id) {
                    batcher.flush()?; // a batch holds one Datanet's records
                    current = Some(datanet.id);
                }
                batcher.push(record)?;
                Ok(!batcher.done())
            },
        )?;
        batcher.flush()
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
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filter = PUSHABLE.filter(filters);
        let schema = super::projected(&records_schema(), projection)?;
        let label = super::label("records", &schema, &filter, limit);
        let source = RecordsSource {
            store: Arc::clone(&self.store),
            datanets: candidate_datanets(&self.readable, &filter),
            filter,
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
