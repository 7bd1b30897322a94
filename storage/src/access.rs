//! Who may use a shared database: API keys (stored hashed, bound to an address and a role),
//! the curators of each Datanet, and requests for read access waiting for a curator.
//!
//! These are access-control metadata, not Datanet data: nothing is derived from them, so they
//! are written in their own synced write, outside the sequenced change log. Read grants stay in
//! `Grant` (they are logged: indexes filter by them).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::model::Address;

/// What a key may do, from least to most. Each role may do everything the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyRole {
    /// Reads what its address may read; searches, queries, asks.
    Reader,
    /// A reader that may also upload records as its own address.
    Contributor,
    /// A contributor that may also create Datanets (and owns them).
    Curator,
    /// Everything, on every Datanet.
    Admin,
}

impl KeyRole {
    /// The lower-case name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Contributor => "contributor",
            Self::Curator => "curator",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for KeyRole {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "reader" => Self::Reader,
            "contributor" => Self::Contributor,
            "curator" => Self::Curator,
            "admin" => Self::Admin,
            other => {
                return Err(StorageError::Invalid(format!(
                    "unknown role '{other}' (reader, contributor, curator, admin)"
                )));
            }
        })
    }
}

/// An API key as stored: never the secret itself, only its keccak256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id, the key's first part; the row's key.
    pub key_id: [u8; 8],
    /// keccak256 of the secret part.
    pub secret_hash: [u8; 32],
    /// The address the key acts as.
    pub address: Address,
    /// What it may do.
    pub role: KeyRole,
    /// A note for people.
    pub label: String,
    /// When it was made, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at_ms: Option<i64>,
}

/// A curator of a Datanet, added by its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curator {
    /// The curator's address.
    pub address: Address,
    /// Who added it.
    pub added_by: Option<Address>,
    /// When, ms since the Unix epoch.
    pub added_at_ms: i64,
}

/// A request for read access, waiting for a curator (the latest request of an address wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// Who asks.
    pub address: Address,
    /// Their note to the curators.
    pub message: String,
    /// When, ms since the Unix epoch.
    pub requested_at_ms: i64,
}

/// Longest note on an access request, in bytes.
pub const MAX_ACCESS_MESSAGE_BYTES: usize = 1024;
