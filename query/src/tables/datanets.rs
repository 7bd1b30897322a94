//! `datanets`: one row per readable Datanet, with its settings and counts.

use std::sync::{Arc, LazyLock};

use arrow_array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use provdb_storage::{Datanet, StorageError, Store, Visibility};

use super::small::{SmallTable, View};
use crate::access::Caller;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("datanet_id", DataType::UInt32, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("license", DataType::Utf8, false),
        Field::new("text_column", DataType::Utf8, false),
        Field::new("visibility", DataType::Utf8, false),
        Field::new("owner", DataType::Utf8, true),
        Field::new("require_signatures", DataType::Boolean, false),
        Field::new("created_at", DataType::Int64, false),
        Field::new("records", DataType::UInt64, false),
        Field::new("chunks", DataType::UInt64, false),
        Field::new("contributors", DataType::UInt64, false),
        Field::new("tombstones", DataType::UInt64, false),
        Field::new("last_sequence", DataType::UInt64, false),
    ]))
});

fn batch(store: &Store, view: &View) -> Result<RecordBatch, StorageError> {
    let datanets = view.datanets.as_slice();
    let stats = datanets
        .iter()
        .map(|d| store.stats(d.id))
        .collect::<Result<Vec<_>, _>>()?;
    let strings = |f: &dyn Fn(&Datanet) -> Option<String>| -> ArrayRef {
        Arc::new(datanets.iter().map(f).collect::<StringArray>())
    };
    let counts = |f: &dyn Fn(&provdb_storage::DatanetStats) -> u64| -> ArrayRef {
        Arc::new(stats.iter().map(|s| Some(f(s))).collect::<UInt64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(datanets.iter().map(|d| Some(d.id)).collect::<UInt32Array>()),
        strings(&|d| Some(d.name.clone())),
        strings(&|d| Some(d.description.clone())),
        strings(&|d| Some(d.license.clone())),
        strings(&|d| Some(d.text_column.clone())),
        strings(&|d| {
            Some(match d.visibility {
                Visibility::Public => "public".into(),
                Visibility::Private => "private".into(),
            })
        }),
        strings(&|d| d.owner.map(|o| o.to_string())),
        Arc::new(
            datanets
                .iter()
                .map(|d| Some(d.require_signatures))
                .collect::<BooleanArray>(),
        ),
        Arc::new(
            datanets
                .iter()
                .map(|d| Some(d.created_at_ms))
                .collect::<Int64Array>(),
        ),
        counts(&|s| s.records),
        counts(&|s| s.chunks),
        counts(&|s| s.contributors),
        counts(&|s| s.tombstones),
        counts(&|s| s.last_sequence),
    ];
    RecordBatch::try_new(Arc::clone(&SCHEMA), columns)
        .map_err(|e| StorageError::Internal(format!("datanets table: {e}")))
}

/// The `datanets` table of one session: the readable Datanets.
pub(crate) fn table(
    store: &Arc<Store>,
    readable: &Arc<Vec<Datanet>>,
    caller: Caller,
) -> SmallTable {
    let view = View {
        datanets: Arc::clone(readable),
        caller,
    };
    SmallTable::new("datanets", Arc::clone(&SCHEMA), store, view, batch)
}
