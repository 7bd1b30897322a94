//! Access for a shared database (the HTTP server, `provdb key`): API keys, and what the holder
//! of one may do on each Datanet.
//!
//! A key is `pdb_<16 hex: key id>_<64 hex: secret>`. Only keccak256(secret) is stored; a
//! presented key is looked up by its id and its secret's hash compared in constant time.
//! Standing on a Datanet ([`DatanetRole`]) follows from the key's role and address: an admin
//! may do everything; the owner and curators curate; anyone who may read it reads. A Datanet a
//! principal may not read is reported exactly like one that does not exist.

use provdb_query::Caller;
use provdb_storage::{
    AccessRequest, Address, ApiKey, Curator, Datanet, Grant, KeyRole, StorageError, keccak256,
};
use subtle::ConstantTimeEq;

use crate::db::{Db, now_ms};
use crate::error::{Error, Result};

const KEY_PREFIX: &str = "pdb_";

/// Who a request comes from: an authenticated key's address and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id (hex).
    pub key_id: String,
    /// The address the key acts as.
    pub address: Address,
    /// Its role.
    pub role: KeyRole,
}

impl Principal {
    /// The principal as a query caller (an admin reads every Datanet).
    pub fn caller(&self) -> Caller {
        if self.role == KeyRole::Admin {
            Caller::admin(self.address)
        } else {
            Caller::address(self.address)
        }
    }

    /// Whether the key's role is at least `role`.
    pub fn has(&self, role: KeyRole) -> bool {
        self.role >= role
    }
}

/// A principal's standing on one Datanet it may read, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DatanetRole {
    /// May read it.
    Reader,
    /// Curates it: record status and quality, access requests and grants.
    Curator,
    /// Owns it: a curator that also names the curators.
    Owner,
    /// An administrator.
    Admin,
}

impl DatanetRole {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Curator => "curator",
            Self::Owner => "owner",
            Self::Admin => "admin",
        }
    }
}

/// Splits `pdb_<id>_<secret>` into its id and secret bytes.
fn parse_token(token: &str) -> Option<([u8; 8], [u8; 32])> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let mut key_id = [0u8; 8];
    let mut secret_bytes = [0u8; 32];
    hex::decode_to_slice(id, &mut key_id).ok()?;
    hex::decode_to_slice(secret, &mut secret_bytes).ok()?;
    Some((key_id, secret_bytes))
}

impl Db {
    /// Makes an API key for `address` with `role`; returns what is stored and the key itself,
    /// which is shown once and never stored.
    pub fn create_api_key(
        &self,
        address: Address,
        role: KeyRole,
        label: &str,
    ) -> Result<(ApiKey, String)> {
        if label.len() > 200 {
            return Err(Error::Invalid("a key label is at most 200 bytes".into()));
        }
        let key_id: [u8; 8] = rand::random();
        let secret: [u8; 32] = rand::random();
        let key = ApiKey {
            key_id,
            secret_hash: keccak256(&secret),
            address,
            role,
            label: label.to_string(),
            created_at_ms: now_ms(),
            revoked_at_ms: None,
        };
        self.store.put_api_key(&key)?;
        let token = format!(
            "{KEY_PREFIX}{}_{}",
            hex::encode(key_id),
            hex::encode(secret)
        );
        Ok((key, token))
    }

    /// The principal a presented key stands for; `None` for a malformed, unknown or revoked key
    /// (deliberately not told apart).
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let Some((key_id, secret)) = parse_token(token.trim()) else {
            return Ok(None);
        };
        let Some(key) = self.store.api_key(&key_id)? else {
            return Ok(None);
        };
        let matches: bool = keccak256(&secret).ct_eq(&key.secret_hash).into();
        if !matches || key.revoked_at_ms.is_some() {
            return Ok(None);
        }
        Ok(Some(Principal {
            key_id: hex::encode(key.key_id),
            address: key.address,
            role: key.role,
        }))
    }

    /// Every API key (hashes only), revoked ones too.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.store.api_keys()?)
    }

    /// Revokes the key with this id (hex).
    pub fn revoke_api_key(&self, key_id: &str) -> Result<ApiKey> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(key_id.trim_start_matches(KEY_PREFIX), &mut id)
            .map_err(|_| Error::Invalid(format!("invalid key id '{key_id}': 16 hex digits")))?;
        Ok(self.store.revoke_api_key(&id, now_ms())?)
    }

    /// `principal`'s standing on Datanet `name`; an unknown Datanet and one it may not read
    /// give the same error.
    pub fn datanet_role(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<(Datanet, DatanetRole)> {
        let unknown = || Error::Storage(StorageError::UnknownDatanet(name.to_string()));
        let datanet = match self.store.datanet(name) {
            Ok(d) => d,
            Err(StorageError::UnknownDatanet(_)) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let role = if principal.role == KeyRole::Admin {
            DatanetRole::Admin
        } else if datanet.owner == Some(principal.address) {
            DatanetRole::Owner
        } else if self.store.is_curator(datanet.id, &principal.address)? {
            DatanetRole::Curator
        } else if principal.caller().may_read(&self.store, &datanet)? {
            DatanetRole::Reader
        } else {
            return Err(unknown());
        };
        Ok((datanet, role))
    }

    /// Asks the curators of Datanet `name` for read access. Silently does nothing for a
    /// Datanet that does not exist, so the answer tells nothing of private names.
    pub fn request_access(&self, name: &str, who: Address, message: &str) -> Result<()> {
        let datanet = match self.store.datanet(name) {
            Ok(d) => d,
            Err(StorageError::UnknownDatanet(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if message.len() > provdb_storage::MAX_ACCESS_MESSAGE_BYTES {
            return Err(Error::Invalid(format!(
                "the message is {} bytes, at most {}",
                message.len(),
                provdb_storage::MAX_ACCESS_MESSAGE_BYTES
            )));
        }
        let request = AccessRequest {
            address: who,
            message: message.to_string(),
            requested_at_ms: now_ms(),
        };
        Ok(self.store.request_access(datanet.id, &request)?)
    }

    /// Gives `grantee` read access to `datanet` (answering its request, if any); the
    /// change's sequence number.
    pub fn grant_read(&self, datanet: &Datanet, grantee: Address, by: Address) -> Result<u64> {
        let sequence = self.store.grant(&Grant {
            datanet_id: datanet.id,
            grantee,
            granted_by: Some(by),
            granted_at_ms: now_ms(),
        })?;
        self.store.drop_access_request(datanet.id, &grantee)?;
        Ok(sequence)
    }

    /// Takes `grantee`'s read access away (and declines a waiting request).
    pub fn revoke_read(&self, datanet: &Datanet, grantee: Address) -> Result<u64> {
        let sequence = self.store.revoke(datanet.id, &grantee)?;
        self.store.drop_access_request(datanet.id, &grantee)?;
        Ok(sequence)
    }

    /// Makes `address` a curator of `datanet`.
    pub fn add_curator(&self, datanet: &Datanet, address: Address, by: Address) -> Result<()> {
        Ok(self.store.add_curator(
            datanet.id,
            &Curator {
                address,
                added_by: Some(by),
                added_at_ms: now_ms(),
            },
        )?)
    }

    /// Removes a curator of `datanet`.
    pub fn remove_curator(&self, datanet: &Datanet, address: Address) -> Result<()> {
        Ok(self.store.remove_curator(datanet.id, &address)?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_token;

    #[test]
    fn tokens_parse_only_in_their_exact_shape() {
        let good = format!("pdb_{}_{}", "ab".repeat(8), "cd".repeat(32));
        assert_eq!(parse_token(&good), Some(([0xab; 8], [0xcd; 32])));
        for bad in [
            "".to_string(),
            "pdb_".into(),
            format!("pdx_{}_{}", "ab".repeat(8), "cd".repeat(32)),
            format!("pdb_{}_{}", "ab".repeat(7), "cd".repeat(32)),
            format!("pdb_{}_{}", "ab".repeat(8), "cd".repeat(31)),
            format!("pdb_{}-{}", "ab".repeat(8), "cd".repeat(32)),
            format!("pdb_{}_{}", "zz".repeat(8), "cd".repeat(32)),
        ] {
            assert_eq!(parse_token(&bad), None, "{bad}");
        }
    }
}
