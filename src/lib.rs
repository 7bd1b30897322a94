//! provdb: an embedded database and retrieval engine for payable AI.
//!
//! Every record knows who contributed it (an EVM address, proven by an EIP-712 signature over
//! its content hash, Datanet, license, time and place in its history), every answer cites the records it used, and every use pays their
//! contributors through a hash-chained ledger that settles on an EVM chain. This crate is the
//! embedded API, [`Db`], and the facade that wires the member crates together:
//! - Datanets and ingest (`ingest`: JSONL, CSV, Parquet, Arrow; validated whole, signed,
//!   chunked; one storage batch per input);
//! - search over the indexes (`search`: BM25, vectors, hybrid; each search catches up first);
//! - SQL ([`Db::sql`], DataFusion sessions from `provdb-query` with the search functions);
//! - cited answers (`answer`: retrieve, generate, verify citations, attribute, split the fee,
//!   append to the ledger in one write), the ledger's epochs and proofs;
//! - API keys and a principal's standing on a Datanet (`access`);
//! - the Model Factory (`factory`: LoRA fine-tuning jobs over Datanet records, published as
//!   adapters that pay their training contributors).
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
mod accounts;
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
pub use accounts::OPERATOR_KEY_FILE;
pub use answer::{Answer, AskRequest, Attribution, DEFAULT_MAX_FEE_WEI};
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
    AccountState, ActingRole, Address, ApiKey, Chunk, Committer, Datanet, KeyRole, Price,
    PriceScope, Record, RecordId, SignaturePolicy, SignatureScheme, Status, VersionAct, Visibility,
};
pub use search::{Filters, Fusion, SearchHit, SearchOptions, SentenceEmbedder, Weights};
