//! `chunks`: the chunks of the readable Datanets (every record version's). A `chunk_id` filter
//! is a point lookup per id, a `record_id` filter reads that record's chunks, a `datanet_id`
//! filter limits the scan to those Datanets; `ordinal` and chunk-id ranges are applied in the
//! scan.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use provdb_storage::{Chunk, Datanet, Store, chunks_schema, chunks_to_batch_projected};

use super::records::{candidate_datanets, visit_records};
use crate::filters::{Pushable, ScanFilter};
use crate::scan::{BatchSource, Batcher, LazyScanExec};

const PUSHABLE: Pushable<'static> = Pushable {
    equality: &["chunk_id", "record_id", "datanet_id"],
    ranges: &["chunk_id", "datanet_id", "ordinal"],
};

fn passes(filter: &ScanFilter, chunk: &Chunk) -> bool {
    filter.allows_int(
        "chunk_id",
        i64::try_from(chunk.chunk_id).unwrap_or(i64::MAX),
    ) && filter.allows("record_id", &chunk.record_id.to_string())
        && filter.allows_int("datanet_id", i64::from(chunk.datanet_id))
        && filter.allows_int("ordinal", i64::from(chunk.ordinal))
}

/// The `chunks` table of one session.
#[derive(Debug)]
pub(crate) struct ChunksTable {
    store: Arc<Store>,
    readable: Arc<Vec<Datanet>>,
}

impl ChunksTable {
    pub(crate) fn new(store: &Arc<Store>, readable: &Arc<Vec<Datanet>>) -> Self {
        Self {
            store: Arc::clone(store),
            readable: Arc::clone(readable),
        }
    }
}

#[derive(Debug)]
struct ChunksSource {
    store: Arc<Store>,
    datanets: Vec<Datanet>,
    filter: ScanFilter,
    projection: Option<Vec<usize>>,
    limit: Option<usize>,
}

impl BatchSource for ChunksSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> crate::Result<()> {
        let to_batch = |rows: &[Chunk]| chunks_to_batch_projected(rows, self.projection.as_deref());
        let mut batcher = Batcher::new(self.limit, &to_batch, emit);
        if let Some(ids) = self.filter.values("chunk_id") {
            let mut ids: Vec<u64> = ids.iter().filter_map(|id| id.parse().ok()).collect();
            ids.sort_unstable();
            for id in ids {
                let Some(chunk) = self.store.chunk(id)? else {
                    continue;
                };
                let readable = self.datanets.iter().any(|d| d.id == chunk.datanet_id);
                if readable && passes(&self.filter, &chunk) {
                    batcher.push(chunk)?;
                }
                if batcher.done() {
                    break;
                }
            }
            return batcher.flush();
        }
        // Records are filtered by what applies to them (record id, Datanet); chunks by the rest.
        let mut record_filter = ScanFilter::default();
        record_filter.copy_from(&self.filter, "record_id");
        visit_records(
            &self.store,
            &self.datanets,
            &record_filter,
            &mut |_, record| {
                for chunk in self.store.chunks_of(&record)? {
                    if passes(&self.filter, &chunk) {
                        batcher.push(chunk)?;
                    }
                }
                Ok(!batcher.done())
            },
        )?;
        batcher.flush()
    }
}

#[async_trait]
impl TableProvider for ChunksTable {
    fn schema(&self) -> SchemaRef {
        chunks_schema()
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
        let schema = super::projected(&chunks_schema(), projection)?;
        let label = super::label("chunks", &schema, &filter, limit);
        let source = ChunksSource {
            store: Arc::clone(&self.store),
            datanets: candidate_datanets(&self.readable, &filter),
            filter,
            projection: projection.cloned(),
            limit,
        };
        Ok(Arc::new(LazyScanExec::new(Arc::new(source), schema, label)))
    }
}
