//! `grants`: read grants of the Datanets the caller owns (a grantee sees that it may read a
//! Datanet through the Datanet being readable, not through this table).

use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use provdb_storage::{Datanet, Grant, StorageError, Store};

use super::small::{SmallTable, View};
use crate::access::Caller;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("datanet", DataType::Utf8, false),
        Field::new("grantee", DataType::Utf8, false),
        Field::new("granted_by", DataType::Utf8, true),
        Field::new("granted_at", DataType::Int64, false),
    ]))
});

fn batch(store: &Store, owned: &View) -> Result<RecordBatch, StorageError> {
    let mut rows: Vec<(&Datanet, Grant)> = Vec::new();
    for datanet in owned.datanets.iter() {
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

/// The `grants` table of one session: grants of the Datanets the caller owns.
pub(crate) fn table(
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
    caller: Caller,
) -> SmallTable {
    let owned: Vec<Datanet> = readable
        .iter()
        .filter(|d| caller.owns(d))
        .cloned()
        .collect();
    let view = View {
        datanets: Arc::new(owned),
        caller,
    };
    SmallTable::new("grants", Arc::clone(&SCHEMA), store, view, batch)
}
