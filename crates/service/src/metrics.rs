//! The server's Prometheus metrics (`GET /metrics` on the `--metrics-addr`
//! listener, text exposition format): requests by route and status,
//! latency histograms by route, requests shed, connections, queue depth,
//! bundles and their bytes, and evictions.
//!
//! Invariants: one [`Metrics`] per server (no global registry, so several
//! servers in one process, as in the tests, keep their own counts); labels
//! are route *templates* (`/v1/infer/{key_id}`), never key ids or tokens.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

/// Labels of an eviction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

type Latency = Family<Route, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The counters, gauges and histograms of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Latency,
    shed: Family<Route, Counter>,
    connections: Gauge,
    refused_connections: Counter,
    queue: Gauge,
    running: Gauge,
    bundles: Gauge,
    bundle_bytes: Gauge,
    evictions: Family<Reason, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered under the `slaf_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("slaf");
        let requests = Family::<RouteStatus, Counter>::default();
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        let shed = Family::<Route, Counter>::default();
        let (connections, refused_connections) = (Gauge::default(), Counter::default());
        let (queue, running) = (Gauge::default(), Gauge::default());
        let (bundles, bundle_bytes) = (Gauge::default(), Gauge::default());
        let evictions = Family::<Reason, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's headers to its answer, by route template",
            latency.clone(),
        );
        registry.register(
            "shed",
            "Requests refused with 503 before their body was read (admission full)",
            shed.clone(),
        );
        registry.register("connections", "Open connections", connections.clone());
        registry.register(
            "refused_connections",
            "Connections closed at once because the connection cap was reached",
            refused_connections.clone(),
        );
        registry.register(
            "queue_depth",
            "Admitted requests waiting for a CKKS worker",
            queue.clone(),
        );
        registry.register("running", "Requests on a CKKS worker now", running.clone());
        registry.register("bundles", "Bundles held in memory", bundles.clone());
        registry.register(
            "bundle_bytes",
            "Bytes of evaluation keys held in memory",
            bundle_bytes.clone(),
        );
        registry.register(
            "bundle_evictions",
            "Bundles evicted: from memory (still stored) or by a tenant's own quota (deleted)",
            evictions.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            shed,
            connections,
            refused_connections,
            queue,
            running,
            bundles,
            bundle_bytes,
            evictions,
        }
    }

    /// A request to `route` answered `status` after `seconds`.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// A request to `route` shed before its body was read.
    pub fn shed(&self, route: &str) {
        self.shed
            .get_or_create(&Route {
                route: route.to_string(),
            })
            .inc();
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// A connection refused at the cap.
    pub fn refused_connection(&self) {
        self.refused_connections.inc();
    }

    /// A request started (`+1`) or stopped (`-1`) waiting for a worker.
    pub fn queued(&self, delta: i64) {
        self.queue.inc_by(delta);
    }

    /// A request started (`+1`) or stopped (`-1`) running on a worker.
    pub fn running(&self, delta: i64) {
        self.running.inc_by(delta);
    }

    /// The bundle store now: bundles and bytes in memory, and evictions
    /// since the last call (`memory`, `quota`).
    pub fn bundles(&self, count: usize, bytes: usize, memory: u64, quota: u64) {
        self.bundles.set(i64::try_from(count).unwrap_or(i64::MAX));
        self.bundle_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        for (reason, n) in [("memory", memory), ("quota", quota)] {
            if n > 0 {
                self.evictions.get_or_create(&Reason { reason }).inc_by(n);
            }
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let m = Metrics::new();
        m.request("/v1/infer/{key_id}", 200, 0.5);
        m.request("/v1/infer/{key_id}", 200, 0.7);
        m.shed("/v1/keys");
        m.bundles(2, 1000, 1, 0);
        m.bundles(2, 1000, 1, 3);
        let t = m.render();
        for want in [
            "slaf_requests_total{route=\"/v1/infer/{key_id}\",status=\"200\"} 2",
            "slaf_request_duration_seconds_count{route=\"/v1/infer/{key_id}\"} 2",
            "slaf_shed_total{route=\"/v1/keys\"} 1",
            "slaf_bundle_bytes 1000",
            "slaf_bundle_evictions_total{reason=\"memory\"} 2",
            "slaf_bundle_evictions_total{reason=\"quota\"} 3",
        ] {
            assert!(t.contains(want), "{want} not in\n{t}");
        }
    }
}
