//! provdb-storage: the durable state of a provdb database, on RocksDB.
//!
//! Owns the on-disk layout (column families and key encodings), the provenance data model
//! (datanets, records, chunks, grants), the change log that side indexes catch up from, the
//! attribution ledger (answers, hash-chained entries, epochs and their Merkle roots), the
//! OpenZeppelin-compatible Merkle tree those epochs close into (`merkle`), the contributor
//! index, scans that read records in place (`RecordView`), and the export of
//! records and chunks as Arrow `RecordBatch`es.
//!
//! Invariants:
//! - Every mutation takes the next sequence number, and the data it writes, its change-log
//!   entry and the advanced sequence commit in one RocksDB `WriteBatch`: a batch is all there
//!   or not there.
//! - Record content is immutable and `record_id == keccak256(content)`; an update is a new
//!   record version that `supersedes` the old one, a removal is a tombstone version. The only
//!   fields that change in place are the curation `status` (approve, reject, slash) and quality, and every
//!   such change is logged with its own sequence number.
//! - Access-control metadata (API keys, curators, access requests: `access`), fine-tuning
//!   jobs and the acts that make their adapters public (`jobs`) are written in synced writes of their own, outside the change log: nothing
//!   is derived from them.
//! - This crate knows nothing of parsing, SQL, models or chains; callers hand it validated
//!   records.

mod access;
mod acts;
mod arrow_export;
mod codec;
mod error;
mod hash;
mod jobs;
mod keys;
mod ledger;
mod merkle;
mod model;
mod money;
mod store;
mod view;

pub use access::{AccessRequest, ApiKey, Curator, KeyRole, MAX_ACCESS_MESSAGE_BYTES};
pub use acts::{
    ActingRole, Committer, DEFAULT_CHAIN_ID, SignaturePolicy, SignatureScheme, VersionAct,
    version_rule,
};
pub use arrow_export::{
    RecordsBatchBuilder, chunks_schema, chunks_to_batch, chunks_to_batch_projected, records_schema,
    records_to_batch, records_to_batch_projected,
};
pub use error::{Result, StorageError};
pub use hash::{hex32, keccak256, keccak256_each};
pub use jobs::{AdapterAct, JobEvent, JobRecord, JobStatus};
pub use ledger::{
    AnswerId, AnswerRecord, CitationRecord, Epoch, LedgerCheck, LedgerEntry, LedgerPolicy,
    NewEntry, PolicyScope, ReplayedEpoch, Role,
};
pub use merkle::{
    MAX_MERKLE_LEAVES, MerkleTree, merkle_leaf_hash, merkle_process_proof, merkle_verify,
    record_ids_root,
};
pub use model::{
    Address, BatchReceipt, Chunk, ChunkingConfig, ColumnKind, ColumnSpec, Datanet, DatanetId,
    DatanetStats, Grant, LogEntry, NearDuplicateAction, NearDuplicatePolicy, NewChunk, NewRecord,
    Record, RecordId, Status, UnhashedRecord, Visibility, record_id_of,
};
pub use money::{
    AccountState, CreditSource, CreditedDeposit, Deposit, DepositKey, EntryDetail,
    MAX_CREDIT_REASON_BYTES, Price, PriceScope,
};
pub use store::{
    BatchStart, DEFAULT_BLOCK_CACHE_BYTES, NewAnswer, PreparedBatch, RecordScan, Store,
    StoreOptions, Uncommitted,
};
pub use view::RecordView;
