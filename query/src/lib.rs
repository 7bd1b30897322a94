//! provdb-query: SQL over Datanets.
//!
//! Owns the DataFusion session a query runs in ([`QueryEngine`]): one table provider per table
//! (`datanets`, `records`, `chunks`, `grants`, and one typed table per Datanet named after it),
//! each backed by storage and streaming lazily, with projection, filter and limit pushdown
//! (`EXPLAIN` shows what reached the scan); bounded memory (also for collected results and
//! the outputs of expanding functions such as `repeat`), result bytes and a timeout per query. Access
//! rules hold below SQL: a session is built for one [`Caller`], and its tables only ever read
//! the Datanets that caller may read (public ones, the caller's own, and those it holds a read
//! grant on), so no join, subquery, count or error message can reach another. The search table
//! functions (`bm25_search`, `vector_search`, `hybrid_search`) call the indexes through a
//! [`Searcher`] the embedded database provides; the ledger's audit tables (`attributions`,
//! `citations`, `epochs`, `balances`) read what the answer pipeline recorded, an answer only
//! when the caller may read every Datanet it touched, a question only for its asker, the
//! owners of those Datanets and admins. Sessions are read-only. Depends on storage and index.

mod access;
mod engine;
mod error;
mod filters;
mod limits;
mod rewrite;
mod scan;
mod search;
mod tables;

pub use access::Caller;
pub use datafusion::arrow;
pub use datafusion::execution::SendableRecordBatchStream;
pub use engine::{QueryEngine, QueryOutput};
pub use error::{QueryError, Result};
pub use limits::QueryLimits;
pub use search::Searcher;
