//! provdb: an embedded database and retrieval engine for payable AI.
//!
//! Every record knows who contributed it (an EVM address, proven by an EIP-191 signature over
//! its content hash); later layers add retrieval, cited answers, and an attribution ledger
//! synced to an EVM chain. This crate is the facade that wires the member crates together:
//! open a [`Db`], create Datanets, ingest files or Arrow batches, read records back.
//!
//! ```no_run
//! # fn main() -> provdb::Result<()> {
//! let db = provdb::Db::init("./provdb-data")?;
//! db.create_datanet(provdb::Datanet::new("papers"))?;
//! let report = db.ingest_file("papers", "papers.jsonl".as_ref(), &provdb::IngestOptions::default())?;
//! println!("{} records at sequence {:?}", report.accepted, report.sequence);
//! # Ok(()) }
//! ```

mod access;
pub mod answer;
mod ask;
mod db;
pub mod demo;
mod epochs;
mod error;
pub mod eval;
pub mod factory;
pub mod ingest;
pub mod models;
pub mod schema;
pub mod search;
pub mod smart;
mod sql;

pub use access::{DatanetRole, Principal};
pub use answer::{Answer, AskRequest, Attribution};
pub use ask::{DEFAULT_ADAPTER_CACHE_BYTES, adapter_store_at};
pub use db::{DatanetInfo, Db};
pub use epochs::EpochProof;
pub use error::{Error, Location, Result};
pub use ingest::{IngestOptions, IngestReport};
pub use provdb_index as index;
pub use provdb_index::Mode as SearchMode;
pub use provdb_inference as inference;
pub use provdb_query as query;
pub use provdb_query::{Caller, QueryLimits, QueryOutput};
pub use provdb_storage as storage;
pub use provdb_storage::{
    Address, ApiKey, Chunk, Datanet, KeyRole, Record, RecordId, Status, Visibility,
};
pub use search::{Filters, Fusion, SearchHit, SearchOptions, SentenceEmbedder, Weights};
