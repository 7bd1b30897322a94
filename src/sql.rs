//! SQL over the database: [`Db::sql`] runs a query to the end for a caller (blocking, on a
//! small tokio runtime shared by every `Db` of the process), [`Db::sql_stream`] hands out the
//! stream of batches for async callers. Access rules and limits are the query crate's; the
//! search table functions reach this database's indexes through [`DbSearcher`].

use std::sync::OnceLock;

use std::sync::Arc;

use provdb_index::{IndexHit, SearchOptions};
use provdb_query::{Caller, QueryEngine, QueryError, QueryLimits, QueryOutput, Searcher};

use crate::db::Db;
use crate::error::{Error, Result};

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

/// The database's indexes as the query crate's search table functions see them.
pub(crate) struct DbSearcher(pub(crate) Db);

impl Searcher for DbSearcher {
    fn search(
        &self,
        datanet: &str,
        text: &str,
        options: &SearchOptions,
        caller: Caller,
    ) -> provdb_query::Result<Vec<IndexHit>> {
        self.0
            .search_hits(datanet, text, options, caller)
            .map_err(|e| match e {
                Error::Query(q) => q,
                e if e.is_user_error() => QueryError::Invalid(e.to_string()),
                e => QueryError::Execution(e.to_string()),
            })
    }
}
