//! API keys, curators and access requests (see `crate::access`): each change is one synced
//! write of its own; none takes a sequence number.

use rocksdb::{WriteBatch, WriteOptions};

use super::Store;
use crate::access::{AccessRequest, ApiKey, Curator, MAX_ACCESS_MESSAGE_BYTES};
use crate::codec::{decode, encode};
use crate::error::{Result, StorageError};
use crate::keys::{CF_ACCESS_REQUESTS, CF_API_KEYS, CF_CURATORS, datanet_address_key, datanet_key};
use crate::model::{Address, DatanetId};

impl Store {
    fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db
            .write_opt(batch, &options)
            .map_err(|e| self.rocks(e))
    }

    /// Stores a new API key; refuses a key id already in use.
    pub fn put_api_key(&self, key: &ApiKey) -> Result<()> {
        let _writer = self.lock()?;
        if self.api_key(&key.key_id)?.is_some() {
            return Err(StorageError::Invalid(format!(
                "api key id {} exists",
                hex::encode(key.key_id)
            )));
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_API_KEYS)?, key.key_id, encode(key)?);
        self.write_synced(batch)
    }

    /// One API key by id.
    pub fn api_key(&self, key_id: &[u8; 8]) -> Result<Option<ApiKey>> {
        let cf = self.cf(CF_API_KEYS)?;
        match self
            .db
            .get_pinned_cf(cf, key_id)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => Ok(Some(decode(CF_API_KEYS, key_id, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every API key (revoked ones too), by id.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let mut out = Vec::new();
        self.scan_prefix(CF_API_KEYS, &[], |key, value| {
            out.push(decode(CF_API_KEYS, key, value)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Revokes a key (it stays listed, with its revocation time).
    pub fn revoke_api_key(&self, key_id: &[u8; 8], now_ms: i64) -> Result<ApiKey> {
        let _writer = self.lock()?;
        let mut key = self.api_key(key_id)?.ok_or_else(|| {
            StorageError::Invalid(format!("no api key with id {}", hex::encode(key_id)))
        })?;
        key.revoked_at_ms.get_or_insert(now_ms);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_API_KEYS)?, key.key_id, encode(&key)?);
        self.write_synced(batch)?;
        Ok(key)
    }

    /// Adds (or re-adds) a curator of a Datanet.
    pub fn add_curator(&self, datanet_id: DatanetId, curator: &Curator) -> Result<()> {
        self.datanet_by_id(datanet_id)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_CURATORS)?,
            datanet_address_key(datanet_id, &curator.address),
            encode(curator)?,
        );
        self.write_synced(batch)
    }

    /// Removes a curator (a no-op when it is not one).
    pub fn remove_curator(&self, datanet_id: DatanetId, address: &Address) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(
            self.cf(CF_CURATORS)?,
            datanet_address_key(datanet_id, address),
        );
        self.write_synced(batch)
    }

    /// The curators of a Datanet, by address.
    pub fn curators(&self, datanet_id: DatanetId) -> Result<Vec<Curator>> {
        let mut out = Vec::new();
        self.scan_prefix(CF_CURATORS, &datanet_key(datanet_id), |key, value| {
            out.push(decode(CF_CURATORS, key, value)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether `who` curates the Datanet.
    pub fn is_curator(&self, datanet_id: DatanetId, who: &Address) -> Result<bool> {
        let cf = self.cf(CF_CURATORS)?;
        Ok(self
            .db
            .get_pinned_cf(cf, datanet_address_key(datanet_id, who))
            .map_err(|e| self.rocks(e))?
            .is_some())
    }

    /// Records a request for read access (replacing an earlier one of the same address).
    pub fn request_access(&self, datanet_id: DatanetId, request: &AccessRequest) -> Result<()> {
        if request.message.len() > MAX_ACCESS_MESSAGE_BYTES {
            return Err(StorageError::Invalid(format!(
                "the message is {} bytes, at most {MAX_ACCESS_MESSAGE_BYTES}",
                request.message.len()
            )));
        }
        self.datanet_by_id(datanet_id)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_ACCESS_REQUESTS)?,
            datanet_address_key(datanet_id, &request.address),
            encode(request)?,
        );
        self.write_synced(batch)
    }

    /// Requests for read access waiting on a Datanet, by address.
    pub fn access_requests(&self, datanet_id: DatanetId) -> Result<Vec<AccessRequest>> {
        let mut out = Vec::new();
        self.scan_prefix(
            CF_ACCESS_REQUESTS,
            &datanet_key(datanet_id),
            |key, value| {
                out.push(decode(CF_ACCESS_REQUESTS, key, value)?);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Drops a waiting request (when it is granted or declined).
    pub fn drop_access_request(&self, datanet_id: DatanetId, address: &Address) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(
            self.cf(CF_ACCESS_REQUESTS)?,
            datanet_address_key(datanet_id, address),
        );
        self.write_synced(batch)
    }
}
