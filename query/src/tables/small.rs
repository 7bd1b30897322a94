//! A source for small tables computed whole at scan time (`datanets`, `grants`).

use std::fmt;

use arrow_array::RecordBatch;
use provdb_storage::StorageError;

use crate::scan::BatchSource;

type Compute = Box<dyn Fn() -> Result<RecordBatch, StorageError> + Send + Sync>;

/// Computes the whole table, then projects it.
pub(crate) struct SmallTableSource {
    projection: Option<Vec<usize>>,
    compute: Compute,
}

impl SmallTableSource {
    pub(crate) fn new(
        projection: Option<Vec<usize>>,
        compute: impl Fn() -> Result<RecordBatch, StorageError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            projection,
            compute: Box::new(compute),
        }
    }
}

impl fmt::Debug for SmallTableSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmallTableSource")
            .field("projection", &self.projection)
            .finish()
    }
}

impl BatchSource for SmallTableSource {
    fn produce(&self, emit: &mut dyn FnMut(RecordBatch) -> bool) -> Result<(), StorageError> {
        let batch = (self.compute)()?;
        let batch = match &self.projection {
            Some(indices) => batch
                .project(indices)
                .map_err(|e| StorageError::Internal(format!("projection: {e}")))?,
            None => batch,
        };
        emit(batch);
        Ok(())
    }
}
