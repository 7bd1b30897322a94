//! The table providers. Each reads only the Datanets of its session's caller (the `readable`
//! list it is built with) and scans through [`crate::scan::LazyScanExec`]. Adding a table is
//! one provider registered in [`register_all`].

mod answers;
mod attributions;
mod chunks;
mod citations;
mod datanets;
mod grants;
mod ledger;
mod money;
mod record_filter;
mod records;
mod small;
mod typed;

use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::prelude::SessionContext;
use provdb_storage::{Datanet, Store};

use crate::access::Caller;

/// The tables every session has, by name.
pub(crate) const FIXED_TABLES: [&str; 11] = [
    "datanets",
    "records",
    "chunks",
    "grants",
    "attributions",
    "citations",
    "epochs",
    "balances",
    "prices",
    "accounts",
    "deposits",
];

/// Registers every table `caller` may see: the fixed ones, and one typed table per readable
/// Datanet whose name does not collide with a fixed table.
pub(crate) fn register_all(
    context: &SessionContext,
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
    caller: Caller,
) -> DfResult<()> {
    context.register_table(
        "datanets",
        Arc::new(datanets::table(store, readable, caller)),
    )?;
    context.register_table(
        "records",
        Arc::new(records::RecordsTable::new(store, readable)),
    )?;
    context.register_table(
        "chunks",
        Arc::new(chunks::ChunksTable::new(store, readable)),
    )?;
    context.register_table("grants", Arc::new(grants::table(store, readable, caller)))?;
    context.register_table(
        "attributions",
        Arc::new(attributions::AttributionsTable::new(
            store, readable, caller,
        )),
    )?;
    let small = ledger::small_tables(store, readable, caller);
    for (name, table) in small
        .into_iter()
        .chain(money::money_tables(store, readable, caller))
    {
        context.register_table(name, Arc::new(table))?;
    }
    for datanet in readable.iter() {
        if FIXED_TABLES.contains(&datanet.name.as_str()) {
            continue;
        }
        let table = typed::DatanetTable::new(store, datanet.clone());
        context.register_table(datanet.name.as_str(), Arc::new(table))?;
    }
    Ok(())
}

/// The scan's label for `EXPLAIN`: table, projected columns, applied filters, limit.
pub(crate) fn label(
    table: &str,
    schema: &arrow_schema::Schema,
    filter: &crate::filters::ScanFilter,
    limit: Option<usize>,
) -> String {
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let limit = limit.map_or("none".to_string(), |l| l.to_string());
    format!(
        "table={table}, projection=[{}], pushed_filters=[{}], limit={limit}",
        columns.join(", "),
        filter.describe()
    )
}

/// The projected schema.
pub(crate) fn projected(
    schema: &arrow_schema::SchemaRef,
    projection: Option<&Vec<usize>>,
) -> DfResult<arrow_schema::SchemaRef> {
    Ok(match projection {
        Some(indices) => Arc::new(schema.project(indices)?),
        None => Arc::clone(schema),
    })
}

/// `batch` with only the columns `projection` selects (all when `None`).
pub(crate) fn project_batch(
    batch: arrow_array::RecordBatch,
    projection: Option<&[usize]>,
) -> Result<arrow_array::RecordBatch, provdb_storage::StorageError> {
    match projection {
        Some(indices) => batch
            .project(indices)
            .map_err(|e| provdb_storage::StorageError::Internal(format!("projection: {e}"))),
        None => Ok(batch),
    }
}
