//! SQL over the database: [`Db::sql`] runs a query to the end for a caller, blocking, on a
//! runtime of its own; [`Db::sql_stream`] hands out the stream of batches for async callers.
//! Access rules and limits are the query crate's; the search table functions reach this
//! database's indexes through [`DbSearcher`].
//!
//! Why a runtime per query: a query that sits inside one long expression holds the thread
//! polling it until the expression returns, and its timeout can only fire after that. On a
//! shared runtime it would hold a worker every other query needs; on its own (a current-thread
//! runtime on the calling thread, so an HTTP server runs each query on a blocking thread of
//! its own) it delays nobody else, and its caller can answer at the deadline without it.

use std::sync::Arc;

use provdb_query::{Caller, QueryEngine, QueryLimits, QueryOutput};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::search::searcher::DbSearcher;

impl Db {
    /// A query engine over this database.
    pub fn query_engine(&self, limits: QueryLimits) -> QueryEngine {
        QueryEngine::new(self.store.clone(), limits)
            .with_searcher(Arc::new(DbSearcher(self.clone())))
    }

    /// Runs `sql` as `caller` within `limits`; the whole result. Blocks the calling thread,
    /// which must not be inside an async runtime.
    pub fn sql(&self, sql: &str, caller: Caller, limits: QueryLimits) -> Result<QueryOutput> {
        let engine = self.query_engine(limits);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("provdb-sql")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a SQL runtime: {e}")))?;
        let output = runtime.block_on(engine.run(sql, caller));
        // The query's scans stop at their next batch once their stream is gone; nothing
        // waits for them here.
        runtime.shutdown_background();
        Ok(output?)
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
