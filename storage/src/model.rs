//! The provenance data model: what a Datanet, a record, a chunk and a grant are.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::acts::{SignaturePolicy, SignatureScheme, VersionAct};
use crate::error::StorageError;
use crate::hash::{hex32, keccak256, keccak256_each};

/// Internal numeric id of a Datanet, assigned in creation order.
pub type DatanetId = u32;

/// A record id: keccak256 of the record's canonical content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordId(pub [u8; 32]);

/// The id of a record whose canonical content is `content`.
pub fn record_id_of(content: &str) -> RecordId {
    RecordId(keccak256(content.as_bytes()))
}

/// A 20-byte EVM address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address(pub [u8; 20]);

fn parse_hex_exact<const N: usize>(s: &str, what: &str) -> Result<[u8; N], StorageError> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| {
        StorageError::Invalid(format!(
            "invalid {what} '{s}': expected 0x and {} hex digits ({e})",
            N * 2
        ))
    })?;
    Ok(out)
}

impl FromStr for RecordId {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_exact::<32>(s, "record id").map(Self)
    }
}

impl FromStr for Address {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_exact::<20>(s, "address").map(Self)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex32(&self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Curation state of a record. Only `Approved` records are retrievable by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Waiting for a curator.
    Pending,
    /// Accepted by a curator (or by the Datanet's auto-approval).
    Approved,
    /// Refused by a curator.
    Rejected,
    /// Found bad after approval; its contributor may be penalised.
    Slashed,
    /// Removed: a version with no content that ends the record's history.
    Tombstoned,
}

impl Status {
    /// The lower-case name used in SQL, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Slashed => "slashed",
            Self::Tombstoned => "tombstoned",
        }
    }
}

impl FromStr for Status {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "slashed" => Self::Slashed,
            "tombstoned" => Self::Tombstoned,
            other => {
                return Err(StorageError::Invalid(format!(
                    "unknown status '{other}' (pending, approved, rejected, slashed, tombstoned)"
                )));
            }
        })
    }
}

/// Who may read a Datanet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Everyone.
    Public,
    /// The owner and holders of a read grant.
    Private,
}

/// The type of a Datanet column in its optional typed schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnKind {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float (integers are accepted).
    Float,
    /// true or false.
    Bool,
}

impl ColumnKind {
    /// The name used in schema files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Float => "float",
            Self::Bool => "bool",
        }
    }
}

/// One column of a Datanet's typed schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// Its type.
    pub kind: ColumnKind,
    /// Whether every record must carry a non-null value.
    pub required: bool,
}

/// How the text column is cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingConfig {
    /// Target chunk length in bytes; chunks end on a whitespace boundary when one is near.
    pub size_bytes: u32,
    /// Bytes shared by consecutive chunks.
    pub overlap_bytes: u32,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self {
            size_bytes: 1000,
            overlap_bytes: 150,
        }
    }
}

/// What ingest does with a record whose text nearly copies a stored record's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearDuplicateAction {
    /// Stored as any other record (the link is still recorded).
    #[default]
    Allow,
    /// Stored as `pending`, for review, linked to the record it nearly copies.
    Pending,
    /// The file is refused, naming the line, the record it nearly copies and the similarity.
    Refuse,
}

impl NearDuplicateAction {
    /// Its name: `allow`, `pending` or `refuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Pending => "pending",
            Self::Refuse => "refuse",
        }
    }
}

impl std::str::FromStr for NearDuplicateAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Self::Allow),
            "pending" => Ok(Self::Pending),
            "refuse" => Ok(Self::Refuse),
            other => Err(format!(
                "unknown near-duplicate action '{other}': allow, pending or refuse"
            )),
        }
    }
}

/// A Datanet's near-duplicate policy: what to do, from what similarity, against what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NearDuplicatePolicy {
    /// What ingest does with a near-copy.
    pub action: NearDuplicateAction,
    /// The Jaccard similarity of word shingles from which a record is a near-copy, in basis
    /// points (1..=10000; 8000 is 0.8).
    pub threshold_bps: u16,
    /// Whether records are checked against every Datanet, not only their own.
    pub across_datanets: bool,
}

impl Default for NearDuplicatePolicy {
    fn default() -> Self {
        Self {
            action: NearDuplicateAction::Allow,
            threshold_bps: 8_000,
            across_datanets: false,
        }
    }
}

impl NearDuplicatePolicy {
    /// The threshold as a similarity in 0..=1.
    pub fn threshold(&self) -> f64 {
        f64::from(self.threshold_bps) / 10_000.0
    }
}

/// A curated dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Datanet {
    /// Numeric id, assigned at creation.
    pub id: DatanetId,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Default license of its records.
    pub license: String,
    /// The column whose text is chunked and indexed.
    pub text_column: String,
    /// Optional typed schema; without it any JSON object with the text column is accepted.
    pub schema: Option<Vec<ColumnSpec>>,
    /// Whether every record must carry a valid signature by its contributor.
    pub require_signatures: bool,
    /// Which signatures it accepts, and the chain id of their EIP-712 domain. Stored in the
    /// value's extension (see `acts`), not by serde.
    #[serde(skip)]
    pub signatures: SignaturePolicy,
    /// What ingest does with a record that nearly copies a stored one. Stored in the value's
    /// extension (see `acts`), not by serde.
    #[serde(skip)]
    pub near_duplicates: NearDuplicatePolicy,
    /// Who may read it.
    pub visibility: Visibility,
    /// The owner (curator) address, if any.
    pub owner: Option<Address>,
    /// Status given to newly ingested records (`Approved` or `Pending`).
    pub initial_status: Status,
    /// Chunking of the text column.
    pub chunking: ChunkingConfig,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
}

impl Datanet {
    /// A public Datanet with text column `text`, license `unspecified`, no schema, records
    /// approved on ingest, default chunking. `id` and `created_at_ms` are set on creation.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            id: 0,
            name: name.into(),
            description: String::new(),
            license: "unspecified".into(),
            text_column: "text".into(),
            schema: None,
            require_signatures: false,
            signatures: SignaturePolicy::default(),
            near_duplicates: NearDuplicatePolicy::default(),
            visibility: Visibility::Public,
            owner: None,
            initial_status: Status::Approved,
            chunking: ChunkingConfig::default(),
            created_at_ms: 0,
        }
    }
}

/// Counters kept per Datanet, updated in the same batch as the data they count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatanetStats {
    /// Record versions stored (tombstones included).
    pub records: u64,
    /// Chunks stored.
    pub chunks: u64,
    /// Distinct contributor addresses.
    pub contributors: u64,
    /// Tombstone versions stored.
    pub tombstones: u64,
    /// Bytes of canonical content stored.
    pub content_bytes: u64,
    /// Sequence number of the last batch that touched this Datanet (0: none).
    pub last_sequence: u64,
}

/// A stored record with its provenance columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// keccak256 of `content`.
    pub record_id: RecordId,
    /// The Datanet it belongs to.
    pub datanet_id: DatanetId,
    /// Who contributed it.
    pub contributor: Address,
    /// Signature by `contributor` (65 bytes, r ‖ s ‖ v), if given, under `signature_scheme`.
    pub signature: Option<Vec<u8>>,
    /// License of this record.
    pub license: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// 1 for a first version, n+1 for a version that supersedes version n.
    pub version: u32,
    /// The version this one replaces.
    pub supersedes: Option<RecordId>,
    /// Curator-assigned quality in 0..=1.
    pub quality: Option<f32>,
    /// Curation state.
    pub status: Status,
    /// Canonical JSON of the record's own columns (sorted keys, no whitespace).
    pub content: String,
    /// Byte range in `content` of the text column's JSON string literal, if any.
    pub text_span: Option<(u32, u32)>,
    /// Sequence number of the batch that stored it.
    pub sequence: u64,
    /// Id of its first chunk; chunk `first_chunk_id + i` is `chunk_ranges[i]`.
    pub first_chunk_id: u64,
    /// Byte ranges of its chunks in its text (the chunks' text is sliced from it on read).
    pub chunk_ranges: Vec<(u32, u32)>,
    /// What the signature was made over (`None` without one). Stored in the value's extension
    /// (see `acts`), not by serde.
    #[serde(skip)]
    pub signature_scheme: Option<SignatureScheme>,
    /// Who stored this version over the one it supersedes, and in which role (`None` for a
    /// first version, and for versions stored before acts were recorded). In the extension.
    #[serde(skip)]
    pub act: Option<VersionAct>,
}

impl Record {
    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        self.chunk_ranges.len() as u32
    }

    /// The value of the text column (unescaped), or `None` for a record without text.
    pub fn text(&self) -> Result<Option<String>, StorageError> {
        self.text_span
            .map(|span| text_in(&self.content, span).map(Cow::into_owned))
            .transpose()
    }
}

/// Unescapes the JSON string literal at `span` of `content` (borrowed when it has no escape).
pub(crate) fn text_in(
    content: &str,
    (start, end): (u32, u32),
) -> Result<Cow<'_, str>, StorageError> {
    content
        .get(start as usize..end as usize)
        .and_then(unescape_literal)
        .ok_or_else(|| bad_text_span((start, end)))
}

/// The value of JSON string literal `literal` (borrowed when it has no escape), `None` when it
/// is not one. A literal with escapes cannot be borrowed: it is looked for first rather than
/// letting a borrowing parse fail, since building that error costs more than the parse.
pub(crate) fn unescape_literal(literal: &str) -> Option<Cow<'_, str>> {
    if literal.as_bytes().contains(&b'\\') {
        serde_json::from_str::<String>(literal).ok().map(Cow::Owned)
    } else {
        serde_json::from_str::<&str>(literal)
            .ok()
            .map(Cow::Borrowed)
    }
}

/// The error for a text span that is not a JSON string of its content.
pub(crate) fn bad_text_span((start, end): (u32, u32)) -> StorageError {
    StorageError::Invalid(format!(
        "text span {start}..{end} is not a JSON string of the content"
    ))
}

/// A chunk of a record's text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Global id, dense and increasing: the index's ordinal for bitmaps.
    pub chunk_id: u64,
    /// The record it was cut from.
    pub record_id: RecordId,
    /// The record's Datanet.
    pub datanet_id: DatanetId,
    /// Position within the record, from 0.
    pub ordinal: u32,
    /// Byte offset of the chunk's start in the text column.
    pub start_byte: u32,
    /// Byte offset one past its end.
    pub end_byte: u32,
    /// The text.
    pub text: String,
}

/// A chunk to store, before it has an id: a byte range of its record's text. Its text is not
/// stored twice; it is sliced from the record's content when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewChunk {
    /// Byte offset of the start in the text.
    pub start_byte: u32,
    /// Byte offset one past the end.
    pub end_byte: u32,
}

/// The arguments of `NewRecord::new`, for hashing many records at once (`NewRecord::new_many`).
#[derive(Clone, Debug)]
pub struct UnhashedRecord {
    /// Canonical content.
    pub content: String,
    /// Where the text column's JSON string literal is in `content`.
    pub text_span: Option<(u32, u32)>,
    /// Contributor.
    pub contributor: Address,
}

/// A validated record to store; storage assigns version, sequence and chunk ids.
///
/// Its id is computed from its content by `NewRecord::new` (or `new_many`) and cannot be set
/// otherwise, so `record_id == keccak256(content)` holds by construction and is never hashed
/// twice.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecord {
    pub(crate) record_id: RecordId,
    pub(crate) content: String,
    pub(crate) text_span: Option<(u32, u32)>,
    /// Contributor.
    pub contributor: Address,
    /// Verified signature, if any.
    pub signature: Option<Vec<u8>>,
    /// What the signature was verified over (`None` without one).
    pub signature_scheme: Option<SignatureScheme>,
    /// License.
    pub license: String,
    /// Creation time in ms.
    pub created_at_ms: i64,
    /// Version replaced by this one.
    pub supersedes: Option<RecordId>,
    /// Quality in 0..=1.
    pub quality: Option<f32>,
    pub(crate) chunks: Vec<NewChunk>,
}

impl NewRecord {
    /// A record of canonical `content`, whose text column's JSON string literal is at
    /// `text_span` of it (`None`: no text, and then no chunks). Other fields start empty.
    pub fn new(content: String, text_span: Option<(u32, u32)>, contributor: Address) -> Self {
        let record_id = record_id_of(&content);
        Self::hashed(record_id, content, text_span, contributor)
    }

    /// `new` for many records at once, in order: their contents are hashed together (eight at
    /// a time where the CPU allows), which is faster than one by one.
    pub fn new_many(records: Vec<UnhashedRecord>) -> Vec<Self> {
        let contents: Vec<&[u8]> = records.iter().map(|r| r.content.as_bytes()).collect();
        let ids = keccak256_each(&contents);
        drop(contents);
        records
            .into_iter()
            .zip(ids)
            .map(|(r, id)| Self::hashed(RecordId(id), r.content, r.text_span, r.contributor))
            .collect()
    }

    /// A record whose `record_id` is the hash of `content` (the caller hashed it).
    fn hashed(
        record_id: RecordId,
        content: String,
        text_span: Option<(u32, u32)>,
        contributor: Address,
    ) -> Self {
        Self {
            record_id,
            content,
            text_span,
            contributor,
            signature: None,
            signature_scheme: None,
            license: String::new(),
            created_at_ms: 0,
            supersedes: None,
            quality: None,
            chunks: Vec::new(),
        }
    }

    /// keccak256 of the content.
    pub fn record_id(&self) -> RecordId {
        self.record_id
    }

    /// The canonical content.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Where the text column's literal is in the content.
    pub fn text_span(&self) -> Option<(u32, u32)> {
        self.text_span
    }

    /// Its chunks.
    pub fn chunks(&self) -> &[NewChunk] {
        &self.chunks
    }

    /// Sets its chunks, which must be non-empty, ordered ranges of its text on char boundaries
    /// (checked here, where callers run in parallel, so the commit need not check again).
    pub fn set_chunks(&mut self, chunks: Vec<NewChunk>) -> Result<(), StorageError> {
        let Some(span) = self.text_span else {
            if chunks.is_empty() {
                return Ok(());
            }
            return Err(StorageError::Invalid(format!(
                "record {} has chunks but no text",
                self.record_id
            )));
        };
        let text = text_in(&self.content, span)?;
        let mut previous_start = None;
        for chunk in &chunks {
            let (start, end) = (chunk.start_byte as usize, chunk.end_byte as usize);
            let in_order = previous_start.is_none_or(|p| start > p);
            if start >= end || !in_order || text.get(start..end).is_none() {
                return Err(StorageError::Invalid(format!(
                    "record {}: chunk {start}..{end} is not an ordered range of its {}-byte text",
                    self.record_id,
                    text.len()
                )));
            }
            previous_start = Some(start);
        }
        self.chunks = chunks;
        Ok(())
    }
}

/// A read grant on a private Datanet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The Datanet.
    pub datanet_id: DatanetId,
    /// Who may read.
    pub grantee: Address,
    /// Who granted it.
    pub granted_by: Option<Address>,
    /// When, ms since the Unix epoch.
    pub granted_at_ms: i64,
}

/// What one sequence number changed; side indexes replay these to catch up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LogEntry {
    /// A Datanet was created.
    DatanetCreated {
        /// Its id.
        datanet_id: DatanetId,
    },
    /// An ingest batch stored these records and the chunk id range `first_chunk_id..end_chunk_id`.
    Ingest {
        /// The Datanet.
        datanet_id: DatanetId,
        /// Records stored, in batch order.
        record_ids: Vec<RecordId>,
        /// First chunk id of the batch.
        first_chunk_id: u64,
        /// One past the last chunk id.
        end_chunk_id: u64,
        /// Records that are now superseded by a version in this batch.
        superseded: Vec<RecordId>,
    },
    /// A record's status changed.
    StatusChanged {
        /// The record.
        record_id: RecordId,
        /// Its new status.
        status: Status,
    },
    /// A grant was given or revoked.
    GrantChanged {
        /// The Datanet.
        datanet_id: DatanetId,
        /// The grantee.
        grantee: Address,
        /// True when granted, false when revoked.
        granted: bool,
    },
    /// A price was set (its history is this log; the `prices` family holds the current one).
    PriceSet {
        /// What it applies to.
        scope: crate::money::PriceScope,
        /// Wei per answer.
        per_answer_wei: u128,
        /// Wei per 1,000 generated tokens.
        per_1k_tokens_wei: u128,
        /// Who set it.
        set_by: Option<Address>,
    },
    /// A Datanet's near-duplicate policy changed (its value holds the new one).
    NearDuplicatePolicySet {
        /// The Datanet.
        datanet_id: DatanetId,
        /// What ingest now does with a near-copy (`allow`, `pending`, `refuse`).
        action: String,
        /// From what similarity, in basis points.
        threshold_bps: u16,
        /// Whether checked against every Datanet.
        across_datanets: bool,
        /// Who set it.
        set_by: Option<Address>,
    },
}

/// What a committed batch was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchReceipt {
    /// Its sequence number.
    pub sequence: u64,
    /// Records stored.
    pub records: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// First chunk id (chunks are `first_chunk_id..first_chunk_id + chunks`).
    pub first_chunk_id: u64,
}
