//! Prices: the current price of each scope in the `prices` family, each change a logged
//! mutation with its own sequence number (`LogEntry::PriceSet`), so the log is the price
//! history. Who may set which price is the caller's rule (the root crate); storage checks
//! what holds for every writer: the Datanet exists, per-token prices are for models only.

use rocksdb::{IteratorMode, WriteBatch};

use crate::codec::{decode, encode};
use crate::error::{Result, StorageError};
use crate::keys::*;
use crate::model::{Address, LogEntry};
use crate::money::{Price, PriceScope};
use crate::store::Store;

impl Store {
    /// Sets the price of `scope`, committed under the next sequence number. Returns it.
    pub fn set_price(
        &self,
        scope: PriceScope,
        per_answer_wei: u128,
        per_1k_tokens_wei: u128,
        set_by: Option<Address>,
        now_ms: i64,
    ) -> Result<Price> {
        match &scope {
            PriceScope::Datanet(id) => {
                self.datanet_by_id(*id)?;
            }
            PriceScope::Model(name) if name.is_empty() || name.len() > 256 => {
                return Err(StorageError::Invalid(
                    "a model's name is 1 to 256 bytes".into(),
                ));
            }
            _ => {}
        }
        if per_1k_tokens_wei > 0 && !matches!(scope, PriceScope::Model(_)) {
            return Err(StorageError::Invalid(format!(
                "only a model has a price per 1,000 tokens; a {} is priced per answer",
                scope.kind()
            )));
        }
        let mut counters = self.lock()?;
        let price = Price {
            scope: scope.clone(),
            per_answer_wei,
            per_1k_tokens_wei,
            set_by,
            sequence: counters.sequence + 1,
            set_at_ms: now_ms,
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_PRICES)?, scope.key(), encode(&price)?);
        let entry = LogEntry::PriceSet {
            scope,
            per_answer_wei,
            per_1k_tokens_wei,
            set_by,
        };
        let (next_chunk, next_datanet) = (counters.next_chunk_id, counters.next_datanet_id);
        self.commit(&mut counters, batch, &entry, next_chunk, next_datanet)?;
        Ok(price)
    }

    /// The current price of `scope`, if one was ever set.
    pub fn price(&self, scope: &PriceScope) -> Result<Option<Price>> {
        let key = scope.key();
        match self
            .db
            .get_pinned_cf(self.cf(CF_PRICES)?, &key)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => Ok(Some(decode(CF_PRICES, &key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Every price set, in scope order (adapters, Datanets, models).
    pub fn prices(&self) -> Result<Vec<Price>> {
        let cf = self.cf(CF_PRICES)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.map_err(|e| self.rocks(e))?;
                decode(CF_PRICES, &key, &value)
            })
            .collect()
    }
}
