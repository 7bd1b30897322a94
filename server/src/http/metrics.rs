//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests and latency per route,
//! generated tokens and tokens/s, the generation gate, the adapter cache, ledger entries and
//! index lag.
//!
//! Invariant: no label holds request data. Routes are labelled by their pattern
//! (`/v1/datanets/{name}`), never by the path, so no Datanet name (private or not) and no
//! count per Datanet ever appears here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    registry: Registry,
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
        };
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
        registry.register(
            "ledger_entries",
            "Entries in the attribution ledger",
            m.ledger_entries.clone(),
        );
        registry.register(
            "index_lag_sequences",
            "Storage sequence numbers the least caught-up open index is behind",
            m.index_lag.clone(),
        );
        Self {
            registry,
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

    /// The OpenMetrics text, with the scraped values set first.
    pub(crate) fn encode(&self, scraped: &Scraped) -> Result<String, std::fmt::Error> {
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
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
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
        let text = metrics
            .encode(&Scraped {
                generations_running: 1,
                generations_waiting: 2,
                adapter_hits: 7,
                adapter_loads: 3,
                adapter_evictions: 1,
                adapter_resident_bytes: 1000,
                ledger_entries: 12,
                index_lag: 0,
            })
            .unwrap();
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
    }
}
