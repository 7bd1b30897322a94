//! Column families and key encodings. All integers in keys are big-endian so that RocksDB's
//! byte order is numeric order.

use crate::model::{Address, DatanetId, RecordId};

/// Sequence counters and format marker.
pub(crate) const CF_META: &str = "meta";
/// name → Datanet.
pub(crate) const CF_DATANETS: &str = "datanets";
/// datanet id ‖ 0 → DatanetStats.
pub(crate) const CF_STATS: &str = "datanet_stats";
/// record id → Record.
pub(crate) const CF_RECORDS: &str = "records";
/// datanet id ‖ sequence ‖ page → the batch's records in order (see `store::pages`).
pub(crate) const CF_BATCH_PAGES: &str = "batch_pages";
/// first chunk id of a page that has chunks → its `batch_pages` key.
pub(crate) const CF_CHUNK_PAGES: &str = "chunk_pages";
/// old record id → id of the version that supersedes it.
pub(crate) const CF_SUPERSEDED_BY: &str = "superseded_by";
/// datanet id ‖ address → record count of that contributor.
pub(crate) const CF_CONTRIBUTORS: &str = "contributors";
/// datanet id ‖ address → Grant.
pub(crate) const CF_GRANTS: &str = "grants";
/// sequence → LogEntry.
pub(crate) const CF_LOG: &str = "log";
/// ledger sequence → LedgerEntry (the hash-chained attribution ledger).
pub(crate) const CF_LEDGER: &str = "ledger";
/// answer id → AnswerRecord.
pub(crate) const CF_ANSWERS: &str = "answers";
/// epoch number → Epoch.
pub(crate) const CF_EPOCHS: &str = "epochs";
/// epoch number ‖ address → cumulative balance (u128, big-endian) at that epoch's end.
pub(crate) const CF_BALANCES: &str = "balances";

/// datanet id ‖ contributor ‖ created_at ‖ record id → nothing (see `store::by_contributor`).
pub(crate) const CF_CONTRIBUTOR_RECORDS: &str = "contributor_records";

/// key id (8 bytes) → ApiKey (hashed secret, address, role).
pub(crate) const CF_API_KEYS: &str = "api_keys";
/// datanet id ‖ address → Curator.
pub(crate) const CF_CURATORS: &str = "curators";
/// datanet id ‖ address → AccessRequest.
pub(crate) const CF_ACCESS_REQUESTS: &str = "access_requests";

/// job id (16 bytes) → JobRecord.
pub(crate) const CF_JOBS: &str = "jobs";
/// job id ‖ event seq → JobEvent.
pub(crate) const CF_JOB_EVENTS: &str = "job_events";
/// adapter id (32 bytes) ‖ act seq → AdapterAct (who made a trained adapter public or private).
pub(crate) const CF_ADAPTER_ACTS: &str = "adapter_acts";

/// address → AccountState (a caller's prepaid balance; see `money`).
pub(crate) const CF_ACCOUNTS: &str = "accounts";
/// chain id ‖ contract ‖ deposit id → CreditedDeposit (each credited once).
pub(crate) const CF_DEPOSITS: &str = "deposits";
/// price scope (kind byte ‖ name or id) → Price.
pub(crate) const CF_PRICES: &str = "prices";

/// Every column family, in creation order.
pub(crate) const ALL_CFS: [&str; 24] = [
    CF_META,
    CF_DATANETS,
    CF_STATS,
    CF_RECORDS,
    CF_BATCH_PAGES,
    CF_CHUNK_PAGES,
    CF_SUPERSEDED_BY,
    CF_CONTRIBUTORS,
    CF_GRANTS,
    CF_LOG,
    CF_LEDGER,
    CF_ANSWERS,
    CF_EPOCHS,
    CF_BALANCES,
    CF_CONTRIBUTOR_RECORDS,
    CF_API_KEYS,
    CF_CURATORS,
    CF_ACCESS_REQUESTS,
    CF_JOBS,
    CF_JOB_EVENTS,
    CF_ADAPTER_ACTS,
    CF_ACCOUNTS,
    CF_DEPOSITS,
    CF_PRICES,
];

/// Meta key of the last committed sequence number.
pub(crate) const META_SEQUENCE: &[u8] = b"sequence";
/// Meta key of the next chunk id.
pub(crate) const META_NEXT_CHUNK: &[u8] = b"next_chunk_id";
/// Meta key of the next Datanet id.
pub(crate) const META_NEXT_DATANET: &[u8] = b"next_datanet_id";
/// Meta key of the ledger head: last entry's sequence (u64) ‖ its hash.
pub(crate) const META_LEDGER_HEAD: &[u8] = b"ledger_head";
/// Meta key of the on-disk format version.
pub(crate) const META_FORMAT: &[u8] = b"format";
/// The on-disk format this code writes. 2 added `contributor_records`; a format-1 database is
/// upgraded on open (`Store::build_contributor_index`).
pub(crate) const FORMAT_VERSION: u64 = 2;

pub(crate) fn datanet_key(id: DatanetId) -> [u8; 4] {
    id.to_be_bytes()
}

pub(crate) fn batch_page_key(id: DatanetId, sequence: u64, page: u32) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&id.to_be_bytes());
    key[4..12].copy_from_slice(&sequence.to_be_bytes());
    key[12..].copy_from_slice(&page.to_be_bytes());
    key
}

pub(crate) fn datanet_address_key(id: DatanetId, address: &Address) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..4].copy_from_slice(&id.to_be_bytes());
    key[4..].copy_from_slice(&address.0);
    key
}

/// `created_at` as 8 bytes whose byte order is numeric order (sign bit flipped).
pub(crate) fn sortable_time(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn contributor_record_key(
    id: DatanetId,
    contributor: &Address,
    created_at_ms: i64,
    record: &RecordId,
) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..24].copy_from_slice(&datanet_address_key(id, contributor));
    key[24..32].copy_from_slice(&sortable_time(created_at_ms));
    key[32..].copy_from_slice(&record.0);
    key
}

pub(crate) fn chunk_key(chunk_id: u64) -> [u8; 8] {
    chunk_id.to_be_bytes()
}

pub(crate) fn record_key(id: &RecordId) -> &[u8] {
    &id.0
}

pub(crate) fn u64_value(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}
