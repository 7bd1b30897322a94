//! Limits that keep a shared server responsive: requests per second per API key (governor's
//! keyed GCRA limiter) and the bounded generation gate.
//!
//! Invariant of [`GenerationGate`]: at most `slots` generations run and at most `queue` wait;
//! past that a request is refused at once with 429 and `Retry-After`, never queued without
//! bound. A [`GenerationTicket`] is held for the whole generation, including its ledger write,
//! so [`GenerationGate::wait_idle`] (shutdown) returns only when every answer is recorded.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::error::ApiError;

/// Requests per second per key.
pub(crate) struct KeyRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl KeyRateLimit {
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request of `key_id`; 429 when it is over its rate.
    pub(crate) fn check(&self, key_id: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key_id.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::too_many(
                    "too many requests for this API key; slow down",
                    wait.as_secs_f64().ceil() as u64,
                )
            })
    }
}

/// Generations running and waiting.
pub(crate) struct GenerationGate {
    running: Arc<Semaphore>,
    slots: usize,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    /// A typical generation's length, for `Retry-After`.
    typical: Duration,
}

/// A place in the gate, held for a whole generation.
pub(crate) struct GenerationTicket {
    _permit: OwnedSemaphorePermit,
    _admission: Admission,
}

/// One count in `admitted`, given back when dropped: also when a waiting request goes away.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl GenerationGate {
    pub(crate) fn new(slots: usize, queue: usize) -> Self {
        let slots = slots.max(1);
        Self {
            running: Arc::new(Semaphore::new(slots)),
            slots,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: slots + queue,
            typical: Duration::from_secs(10),
        }
    }

    /// Waits for a slot; 429 at once when every slot and queue place is taken.
    pub(crate) async fn enter(&self) -> Result<GenerationTicket, ApiError> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(Arc::clone(&self.admitted));
        if before >= self.capacity {
            let waits = (before + 1 - self.slots) as u64;
            return Err(ApiError::too_many(
                format!(
                    "the generation queue is full ({} running, {} waiting); retry later",
                    self.slots,
                    self.capacity - self.slots
                ),
                self.typical.as_secs() * waits / self.slots as u64,
            ));
        }
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        Ok(GenerationTicket {
            _permit: permit,
            _admission: admission,
        })
    }

    /// (running, waiting) now.
    pub(crate) fn load(&self) -> (usize, usize) {
        let admitted = self.admitted.load(Ordering::Acquire);
        let running = self.slots - self.running.available_permits();
        (running, admitted.saturating_sub(running))
    }

    /// Waits until no generation runs, then closes the gate to new ones.
    pub(crate) async fn wait_idle(&self) {
        // Taking every permit waits for the tickets in flight to drop.
        if let Ok(all) = self.running.acquire_many(self.slots as u32).await {
            all.forget();
        }
        self.running.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_refuses_past_slots_and_queue_and_frees_on_drop() {
        let gate = GenerationGate::new(1, 1);
        let first = gate.enter().await.unwrap();
        assert_eq!(gate.load(), (1, 0));
        // The second waits for the slot; hold it as a pending future.
        let mut second = Box::pin(gate.enter());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut second)
                .await
                .is_err()
        );
        assert_eq!(gate.load(), (1, 1));
        let third = gate.enter().await.err().unwrap();
        assert_eq!(third.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(gate.load(), (1, 0));
        drop(second);
        assert_eq!(gate.load(), (0, 0));
        // A request that gives up while waiting gives its place back.
        let holder = gate.enter().await.unwrap();
        let mut waiter = Box::pin(gate.enter());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut waiter)
                .await
                .is_err()
        );
        assert_eq!(gate.load(), (1, 1));
        drop(waiter);
        drop(holder);
        assert_eq!(gate.load(), (0, 0));
        gate.wait_idle().await;
        assert!(gate.enter().await.is_err(), "closed after wait_idle");
    }

    #[test]
    fn a_key_over_its_burst_is_refused_with_a_wait() {
        let limit = KeyRateLimit::new(1, 2);
        assert!(limit.check("a").is_ok());
        assert!(limit.check("a").is_ok());
        let refused = limit.check("a").err().unwrap();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(limit.check("b").is_ok(), "keys are limited apart");
    }
}
