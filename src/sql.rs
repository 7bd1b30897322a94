//! SQL over the database: [`Db::sql`] runs a query to the end for a caller (blocking, on a
//! small tokio runtime shared by every `Db` of the process), [`Db::sql_stream`] hands out the
//! stream of batches for async callers. Access rules and limits are the query crate's; the
//! search table functions reach this database's indexes through [`DbSearcher`].

use std::sync::{Arc, OnceLock};

use provdb_query::{Caller, QueryEngine, QueryLimits, QueryOutput};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::search::searcher::DbSearcher;

/// The runtime blocking SQL calls run on.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("provdb-sql")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the SQL runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| built))
}

impl Db {
    /// A query engine over this database.
    pub fn query_engine(&self, limits: QueryLimits) -> QueryEngine {
        QueryEngine::new(self.store.clone(), limits)
            .with_searcher(Arc::new(DbSearcher(self.clone())))
    }

    /// Runs `sql` as `caller` within `limits`; the whole result.
    pub fn sql(&self, sql: &str, caller: Caller, limits: QueryLimits) -> Result<QueryOutput> {
        let engine = self.query_engine(limits);
        Ok(runtime()?.block_on(engine.run(sql, caller))?)
    }

    /// Plans and starts `sql` as `caller`: a stream of record batches (within a tokio runtime).
    pub async fn sql_stream(
        &self,
        sql: &str,
        caller: Caller,
    ) -> Result<provdb_query::SendableRecordBatchStream> {
        let engine = self.query_engine(QueryLimits::default());
        Ok(engine.stream(sql, caller).await?)
    }
}
