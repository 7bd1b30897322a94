//! Limits that keep a shared server responsive: requests per second per API key (governor's
//! keyed GCRA limiter) and the bounded gates in front of generation, SQL, and search and
//! embeddings.
//!
//! Invariant of a [`Gate`]: at most `slots` requests of its kind run and at most `queue` wait;
//! past that a request is refused at once with 429 and `Retry-After`, never queued without
//! bound, and a waiter that finds no slot within the gate's wait is refused with 429 too. A
//! [`Ticket`] is held for the whole work, on whatever thread does it (a generation until its
//! ledger write, so [`Gate::wait_idle`] at shutdown returns only when every answer is
//! recorded; a SQL query until its blocking thread is done, also when its client was answered
//! at the deadline), so the count is of work running, not of requests waiting for an answer.

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

/// Requests of one kind running and waiting.
pub(crate) struct Gate {
    /// What runs behind the gate and the flags that size it, for messages.
    what: &'static str,
    flags: &'static str,
    running: Arc<Semaphore>,
    slots: usize,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    /// A typical request's length, for `Retry-After`.
    typical: Duration,
    /// Longest wait for a slot (`None`: until one frees, within the request timeout).
    max_wait: Option<Duration>,
}

/// A place in a gate, held for the whole work.
pub(crate) struct Ticket {
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

impl Gate {
    /// The generation gate: a waiter waits until a slot frees.
    pub(crate) fn generation(slots: usize, queue: usize) -> Self {
        Self::new(
            "generation",
            "--generation-slots, --generation-queue",
            slots,
            queue,
        )
        .typical(Duration::from_secs(10))
    }

    /// A gate of `slots` running and `queue` waiting for `what`, sized by `flags`.
    pub(crate) fn new(what: &'static str, flags: &'static str, slots: usize, queue: usize) -> Self {
        let slots = slots.max(1);
        Self {
            what,
            flags,
            running: Arc::new(Semaphore::new(slots)),
            slots,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: slots + queue,
            typical: Duration::from_secs(1),
            max_wait: None,
        }
    }

    /// The length of a typical request, for `Retry-After`.
    pub(crate) fn typical(mut self, typical: Duration) -> Self {
        self.typical = typical;
        self
    }

    /// Refuses a waiter with 429 when no slot frees within `max_wait`.
    pub(crate) fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Waits for a slot; 429 at once when every slot and queue place is taken, or when no
    /// slot frees within the gate's wait.
    pub(crate) async fn enter(&self) -> Result<Ticket, ApiError> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(Arc::clone(&self.admitted));
        let retry_after_s =
            |waits: usize| self.typical.as_secs() * waits as u64 / self.slots as u64;
        if before >= self.capacity {
            return Err(ApiError::too_many(
                format!(
                    "too many {} requests at once: {} running and {} waiting, the server's limit \
                     (provdb serve {}); retry later",
                    self.what,
                    self.slots,
                    self.capacity - self.slots,
                    self.flags
                ),
                retry_after_s(before + 1 - self.slots),
            ));
        }
        let acquire = Arc::clone(&self.running).acquire_owned();
        let acquired = match self.max_wait {
            None => acquire.await,
            Some(wait) => tokio::time::timeout(wait, acquire).await.map_err(|_| {
                ApiError::too_many(
                    format!(
                        "too many {} requests at once: no slot of {} freed within {:.0} s \
                         (provdb serve {}); retry later",
                        self.what,
                        self.slots,
                        wait.as_secs_f64(),
                        self.flags
                    ),
                    retry_after_s(self.capacity - self.slots + 1),
                )
            })?,
        };
        let permit = acquired.map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        Ok(Ticket {
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
        let gate = Gate::generation(1, 1);
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

    #[tokio::test]
    async fn a_waiter_past_the_gates_wait_is_refused_naming_the_flags() {
        let gate =
            Gate::new("SQL", "--sql-slots, --sql-queue", 1, 4).max_wait(Duration::from_millis(50));
        let held = gate.enter().await.unwrap();
        let refused = gate.enter().await.err().unwrap();
        assert_eq!(refused.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused.message().contains("too many SQL requests"),
            "{}",
            refused.message()
        );
        assert!(
            refused.message().contains("--sql-slots"),
            "{}",
            refused.message()
        );
        assert_eq!(
            gate.load(),
            (1, 0),
            "the refused waiter gave its place back"
        );
        drop(held);
        assert!(gate.enter().await.is_ok(), "a freed slot serves the next");
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
