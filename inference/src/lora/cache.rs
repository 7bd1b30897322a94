//! [`AdapterCache`]: adapters loaded on first use from an [`AdapterStore`], kept in memory
//! under a byte budget.
//!
//! Invariant: the bytes of every adapter the cache has loaded and not yet freed (resident ones,
//! whether a request holds them or not, plus loads under way) never exceed the budget. Room is
//! reserved before a load, from the size the store recorded; to make room the least recently
//! used adapter that no request holds is evicted; when every resident adapter is held, the
//! load waits for a request to finish (up to a timeout, then a clear error).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AdapterId, AdapterMix, AdapterStore, LoraAdapter};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaModel;

/// Most adapters one request may compose.
pub const MAX_ADAPTERS_PER_REQUEST: usize = 8;

/// How long a load waits for room held by requests in flight.
const ROOM_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a waiting load looks again (requests release adapters by dropping them).
const ROOM_POLL: Duration = Duration::from_millis(2);

struct Entry {
    adapter: Arc<LoraAdapter>,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<AdapterId, Entry>,
    reserved: usize,
    clock: u64,
    hits: u64,
    loads: u64,
    evictions: u64,
    load_time: Duration,
}

impl State {
    fn resident_bytes(&self) -> usize {
        self.entries.values().map(|e| e.adapter.byte_size()).sum()
    }

    /// Evicts the least recently used adapter no request holds; false when there is none.
    fn evict_one(&mut self) -> bool {
        let cold = self
            .entries
            .iter()
            .filter(|(_, e)| Arc::strong_count(&e.adapter) == 1)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(id, _)| *id);
        match cold {
            Some(id) => {
                self.entries.remove(&id);
                self.evictions += 1;
                true
            }
            None => false,
        }
    }
}

/// What the cache holds and has done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// The budget in bytes.
    pub budget_bytes: usize,
    /// Bytes of resident adapters and of loads under way (never above the budget).
    pub resident_bytes: usize,
    /// Resident adapters: id, bytes, whether a request holds it.
    pub resident: Vec<(AdapterId, usize, bool)>,
    /// Requests served from memory.
    pub hits: u64,
    /// Loads from the store.
    pub loads: u64,
    /// Adapters evicted.
    pub evictions: u64,
    /// Time spent loading.
    pub load_time: Duration,
}

/// The byte-bounded LRU cache of loaded adapters for one base model. `Sync`: share it.
pub struct AdapterCache {
    store: AdapterStore,
    model: Arc<LlamaModel>,
    budget: usize,
    state: Mutex<State>,
    room: Condvar,
}

impl AdapterCache {
    /// A cache over `store` for `model`, holding at most `budget_bytes` of adapters.
    pub fn new(store: AdapterStore, model: Arc<LlamaModel>, budget_bytes: usize) -> Self {
        Self {
            store,
            model,
            budget: budget_bytes,
            state: Mutex::new(State::default()),
            room: Condvar::new(),
        }
    }

    /// The store it loads from.
    pub fn store(&self) -> &AdapterStore {
        &self.store
    }

    /// The base model.
    pub fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The adapter `id`, from memory or loaded now. Hold the `Arc` for as long as a request
    /// uses it: a held adapter is never evicted.
    pub fn get(&self, id: AdapterId) -> Result<Arc<LoraAdapter>> {
        {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            if let Some(entry) = state.entries.get_mut(&id) {
                entry.last_used = now;
                let adapter = Arc::clone(&entry.adapter);
                state.hits += 1;
                return Ok(adapter);
            }
        }
        let info = self.store.info(id)?;
        let bytes = info.memory_bytes;
        self.reserve(id, bytes)?;
        let started = Instant::now();
        let loaded = self.store.load_described(id, &info, &self.model);
        let mut state = self.lock();
        state.reserved -= bytes;
        let adapter = match loaded {
            Ok(adapter) => Arc::new(adapter),
            Err(error) => {
                self.room.notify_all();
                return Err(error);
            }
        };
        state.loads += 1;
        state.load_time += started.elapsed();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.entry(id).or_insert(Entry {
            adapter,
            last_used: now,
        });
        entry.last_used = now;
        let adapter = Arc::clone(&entry.adapter);
        drop(state);
        self.room.notify_all();
        Ok(adapter)
    }

    /// The mix `specs` name, loading what is not resident: each spec is `ID[:WEIGHT]`, an
    /// id or a unique prefix of one, weight 1 when omitted.
    pub fn mix(&self, specs: &[String]) -> Result<AdapterMix> {
        if specs.len() > MAX_ADAPTERS_PER_REQUEST {
            return Err(InferenceError::Invalid(format!(
                "{} adapters named; at most {MAX_ADAPTERS_PER_REQUEST} compose one request",
                specs.len()
            )));
        }
        let mut adapters = Vec::with_capacity(specs.len());
        for spec in specs {
            let (id, weight) = match spec.rsplit_once(':') {
                Some((id, weight)) => {
                    let weight: f32 = weight.parse().map_err(|_| {
                        InferenceError::Invalid(format!(
                            "adapter '{spec}': the weight after ':' must be a number"
                        ))
                    })?;
                    (id, weight)
                }
                None => (spec.as_str(), 1.0),
            };
            let id = self.store.resolve(id)?;
            adapters.push((self.get(id)?, weight));
        }
        AdapterMix::weighted(adapters)
    }

    /// Reserves `bytes` for loading `id`, evicting cold adapters or waiting for held ones.
    fn reserve(&self, id: AdapterId, bytes: usize) -> Result<()> {
        if bytes > self.budget {
            return Err(InferenceError::Invalid(format!(
                "adapter {id} needs {bytes} bytes, more than the adapter cache's budget of {} \
                 (raise --adapter-cache-bytes)",
                self.budget
            )));
        }
        let deadline = Instant::now() + ROOM_TIMEOUT;
        let mut state = self.lock();
        loop {
            if state.resident_bytes() + state.reserved + bytes <= self.budget {
                state.reserved += bytes;
                return Ok(());
            }
            if state.evict_one() {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(InferenceError::Invalid(format!(
                    "adapter {id} ({bytes} bytes) does not fit the adapter cache's budget of {} \
                     bytes: it is all held by requests in flight (raise --adapter-cache-bytes)",
                    self.budget
                )));
            }
            state = self
                .room
                .wait_timeout(state, ROOM_POLL)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Drops adapter `id` from memory; false when it was not resident. An adapter a request
    /// holds is not dropped (its bytes must stay counted until the request ends): an error.
    pub fn unload(&self, id: AdapterId) -> Result<bool> {
        let mut state = self.lock();
        match state.entries.get(&id) {
            None => Ok(false),
            Some(entry) if Arc::strong_count(&entry.adapter) > 1 => Err(InferenceError::Invalid(
                format!("adapter {id} is in use by a request; unload it when the request ends"),
            )),
            Some(_) => {
                state.entries.remove(&id);
                drop(state);
                self.room.notify_all();
                Ok(true)
            }
        }
    }

    /// What is resident and the counters.
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        let mut resident: Vec<(AdapterId, usize, bool)> = state
            .entries
            .iter()
            .map(|(id, e)| {
                (
                    *id,
                    e.adapter.byte_size(),
                    Arc::strong_count(&e.adapter) > 1,
                )
            })
            .collect();
        resident.sort();
        CacheStats {
            budget_bytes: self.budget,
            resident_bytes: state.resident_bytes() + state.reserved,
            resident,
            hits: state.hits,
            loads: state.loads,
            evictions: state.evictions,
            load_time: state.load_time,
        }
    }
}
