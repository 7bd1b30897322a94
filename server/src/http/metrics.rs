//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests and latency per route,
//! generated tokens and tokens/s, the generation gate and the adapter cache, to anyone; the
//! store's figures (ledger entries, index lag) only with an admin key.
//!
//! Invariants: no label holds request data. Routes are labelled by their pattern
//! (`/v1/datanets/{name}`), never by the path, so no Datanet name (private or not) and no
//! figure per Datanet ever appears here. Without an admin key, no figure counts stored data
//! (the ledger's length and the index lag grow with private Datanets' answers and records);
//! a key that is sent must be valid (401 otherwise), so a scraper's mistake is not silent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use provdb::KeyRole;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::http::auth::Auth;
use crate::http::error::{self, ApiError};
use crate::http::state::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Values read at scrape time from the parts that own them.
pub(crate) struct Scraped {
    pub(crate) generations_running: usize,
    pub(crate) generations_waiting: usize,
    pub(crate) adapter_hits: u64,
    pub(crate) adapter_loads: u64,
    pub(crate) adapter_evictions: u64,
    pub(crate) adapter_resident_bytes: usize,
    pub(crate) ledger_entries: u64,
    pub(crate) index_lag: u64,
}

/// The server's metrics.
pub(crate) struct Metrics {
    /// What anyone may scrape.
    registry: Registry,
    /// What only an admin key scrapes: figures that count stored data.
    operator: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    tokens: Counter,
    generations: Counter,
    tokens_per_second: Gauge<f64, AtomicU64>,
    running: Gauge,
    waiting: Gauge,
    adapter_hits: Counter,
    adapter_loads: Counter,
    adapter_evictions: Counter,
    adapter_bytes: Gauge,
    ledger_entries: Gauge,
    index_lag: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("provdb");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        let metrics = Self {
            requests,
            latency,
            tokens: Counter::default(),
            generations: Counter::default(),
            tokens_per_second: Gauge::default(),
            running: Gauge::default(),
            waiting: Gauge::default(),
            adapter_hits: Counter::default(),
            adapter_loads: Counter::default(),
            adapter_evictions: Counter::default(),
            adapter_bytes: Gauge::default(),
            ledger_entries: Gauge::default(),
            index_lag: Gauge::default(),
            registry: Registry::default(),
            operator: Registry::default(),
        };
        let mut operator = Registry::with_prefix("provdb");
        let m = &metrics;
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response's start, by route pattern",
            m.latency.clone(),
        );
        registry.register("generated_tokens", "Tokens generated", m.tokens.clone());
        registry.register(
            "generations",
            "Generations finished (chat and answers)",
            m.generations.clone(),
        );
        registry.register(
            "generation_tokens_per_second",
            "Decoding speed of the last finished generation",
            m.tokens_per_second.clone(),
        );
        registry.register(
            "generations_running",
            "Generations running",
            m.running.clone(),
        );
        registry.register(
            "generations_waiting",
            "Generations waiting for a slot",
            m.waiting.clone(),
        );
        registry.register(
            "adapter_cache_hits",
            "Adapter requests served from memory",
            m.adapter_hits.clone(),
        );
        registry.register(
            "adapter_cache_misses",
            "Adapter loads from the store",
            m.adapter_loads.clone(),
        );
        registry.register(
            "adapter_cache_evictions",
            "Adapters evicted",
            m.adapter_evictions.clone(),
        );
        registry.register(
            "adapter_cache_resident_bytes",
            "Bytes of adapters in memory",
            m.adapter_bytes.clone(),
        );
        operator.register(
            "ledger_entries",
            "Entries in the attribution ledger",
            m.ledger_entries.clone(),
        );
        operator.register(
            "index_lag_sequences",
            "Storage sequence numbers the least caught-up open index is behind",
            m.index_lag.clone(),
        );
        Self {
            registry,
            operator,
            ..metrics
        }
    }

    /// Counts a finished request.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a finished generation of `tokens` tokens that decoded for `elapsed`.
    pub(crate) fn generation(&self, tokens: usize, elapsed: Duration) {
        self.generations.inc();
        self.tokens.inc_by(tokens as u64);
        if tokens > 0 && !elapsed.is_zero() {
            self.tokens_per_second
                .set(tokens as f64 / elapsed.as_secs_f64());
        }
    }

    /// The OpenMetrics text, with the scraped values set first; the operator's figures only
    /// for an `admin`.
    pub(crate) fn encode(&self, scraped: &Scraped, admin: bool) -> Result<String, std::fmt::Error> {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.running.set(as_i64(scraped.generations_running as u64));
        self.waiting.set(as_i64(scraped.generations_waiting as u64));
        // These counters live in the adapter cache; mirror their absolute values.
        self.adapter_hits
            .inner()
            .store(scraped.adapter_hits, Ordering::Relaxed);
        self.adapter_loads
            .inner()
            .store(scraped.adapter_loads, Ordering::Relaxed);
        self.adapter_evictions
            .inner()
            .store(scraped.adapter_evictions, Ordering::Relaxed);
        self.adapter_bytes
            .set(as_i64(scraped.adapter_resident_bytes as u64));
        self.ledger_entries.set(as_i64(scraped.ledger_entries));
        self.index_lag.set(as_i64(scraped.index_lag));
        let mut out = String::new();
        prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)?;
        if admin {
            prometheus_client::encoding::text::encode_registry(&mut out, &self.operator)?;
        }
        prometheus_client::encoding::text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// Whether the request carries an admin key: no key is `false`, a key that is not valid is
/// its 401 (or 429).
async fn admin_key(state: &Shared, request: Request) -> Result<bool, ApiError> {
    let (mut parts, _) = request.into_parts();
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(false);
    }
    let auth = Auth::from_request_parts(&mut parts, state).await?;
    Ok(auth.0.has(KeyRole::Admin))
}

/// `GET /metrics`: no key needed; an admin key adds the store's figures.
pub(crate) async fn text(State(state): State<Shared>, request: Request) -> Response {
    let admin = match admin_key(&state, request).await {
        Ok(admin) => admin,
        Err(e) => return e.into_response(),
    };
    let scrape = Arc::clone(&state);
    let scraped = error::blocking(move || {
        let (running, waiting) = scrape.gate.load();
        let cache = scrape.db.adapter_cache().map(|c| c.stats());
        Ok(Scraped {
            generations_running: running,
            generations_waiting: waiting,
            adapter_hits: cache.as_ref().map_or(0, |c| c.hits),
            adapter_loads: cache.as_ref().map_or(0, |c| c.loads),
            adapter_evictions: cache.as_ref().map_or(0, |c| c.evictions),
            adapter_resident_bytes: cache.as_ref().map_or(0, |c| c.resident_bytes),
            // Read only for whoever may see them.
            ledger_entries: if admin {
                scrape.db.store().ledger_head()?.0
            } else {
                0
            },
            index_lag: if admin { scrape.db.index_lag()? } else { 0 },
        })
    })
    .await;
    let encoded = match scraped {
        Ok(scraped) => state
            .metrics
            .encode(&scraped, admin)
            .map_err(|e| ApiError::internal(format!("cannot encode metrics: {e}"))),
        Err(e) => Err(e),
    };
    match encoded {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_routes_by_pattern_and_counts_tokens() {
        let metrics = Metrics::new();
        metrics.request("/v1/datanets/{name}", "GET", 404, Duration::from_millis(3));
        metrics.generation(40, Duration::from_secs(2));
        let scraped = Scraped {
            generations_running: 1,
            generations_waiting: 2,
            adapter_hits: 7,
            adapter_loads: 3,
            adapter_evictions: 1,
            adapter_resident_bytes: 1000,
            ledger_entries: 12,
            index_lag: 0,
        };
        let text = metrics.encode(&scraped, true).unwrap();
        for expected in [
            r#"provdb_http_requests_total{route="/v1/datanets/{name}",method="GET",status="404"} 1"#,
            "provdb_generated_tokens_total 40",
            "provdb_generation_tokens_per_second 20.0",
            "provdb_adapter_cache_hits_total 7",
            "provdb_ledger_entries 12",
            "provdb_generations_waiting 2",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Without an admin key: no figure that counts stored data.
        let public = metrics.encode(&scraped, false).unwrap();
        assert!(
            public.contains("provdb_generated_tokens_total 40"),
            "{public}"
        );
        assert!(!public.contains("ledger_entries"), "{public}");
        assert!(!public.contains("index_lag"), "{public}");
        assert_eq!(public.matches("# EOF").count(), 1, "{public}");
    }
}
