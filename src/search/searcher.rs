//! [`DbSearcher`]: this database's search as the query crate's [`Searcher`], so the SQL table
//! functions (`bm25_search`, `vector_search`, `hybrid_search`) search the same indexes, with
//! the same access checks and catch-up, as [`Db::search`] (query never opens an index itself).

use provdb_index::{IndexHit, SearchOptions};
use provdb_query::{Caller, QueryError, Searcher};

use crate::db::Db;
use crate::error::Error;

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
