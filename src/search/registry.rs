//! The open indexes of a database, by Datanet name: each index is opened once, on first use,
//! and shared by every search after (a `Db`'s clones share the registry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use provdb_index::DatanetIndex;

use crate::error::{Error, Result};

/// The open indexes of a database, by Datanet name.
#[derive(Default)]
pub(crate) struct Indexes {
    open: Mutex<HashMap<String, Arc<DatanetIndex>>>,
}

impl Indexes {
    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Arc<DatanetIndex>>>> {
        self.open
            .lock()
            .map_err(|_| Error::Internal("index registry lock poisoned".into()))
    }

    /// The open index of Datanet `name`, opened by `open` if it is not open yet (under the
    /// registry's lock, so an index is never opened twice).
    pub(crate) fn get_or_open(
        &self,
        name: &str,
        open: impl FnOnce() -> Result<DatanetIndex>,
    ) -> Result<Arc<DatanetIndex>> {
        let mut indexes = self.lock()?;
        if let Some(index) = indexes.get(name) {
            return Ok(Arc::clone(index));
        }
        let index = Arc::new(open()?);
        indexes.insert(name.to_string(), Arc::clone(&index));
        Ok(index)
    }

    /// Every open index.
    pub(crate) fn all(&self) -> Result<Vec<Arc<DatanetIndex>>> {
        Ok(self.lock()?.values().cloned().collect())
    }

    /// Closes Datanet `name`'s index (searches in flight keep theirs); the next use reopens it.
    pub(crate) fn forget(&self, name: &str) -> Result<()> {
        self.lock()?.remove(name);
        Ok(())
    }
}
