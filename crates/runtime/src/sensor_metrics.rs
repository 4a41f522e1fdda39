//! Prometheus metrics every sensor exports on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label set naming what kind of error happened.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `query`, `data`, `publish`, ...
    pub kind: String,
}

/// Error kinds every sensor counts (initialised to zero).
pub const ERROR_KINDS: [&str; 3] = ["query", "publish", "source"];

/// A sensor's counters; clone freely (they share their values).
#[derive(Debug, Clone)]
pub struct SensorMetrics {
    /// Passes completed.
    pub passes: Counter,
    /// Findings published.
    pub findings: Counter,
    /// Errors, by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Wall time of one pass.
    pub pass_duration: Histogram,
    /// Messages waiting in the bus outbox (NATS unreachable).
    pub publish_pending: Gauge,
    /// When the last pass ended (Unix seconds).
    pub last_pass: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl SensorMetrics {
    /// Creates the metrics and registers them under `inspector_sensor_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = SensorMetrics {
            passes: Counter::default(),
            findings: Counter::default(),
            errors: Family::default(),
            pass_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            publish_pending: Gauge::default(),
            last_pass: Gauge::default(),
        };
        let sub = registry.sub_registry_with_prefix("inspector_sensor");
        sub.register("passes", "Sensor passes completed", metrics.passes.clone());
        sub.register("findings", "Findings published", metrics.findings.clone());
        sub.register("errors", "Errors met, by kind", metrics.errors.clone());
        sub.register(
            "pass_duration_seconds",
            "Wall time of one pass",
            metrics.pass_duration.clone(),
        );
        sub.register(
            "publish_pending",
            "Messages waiting to be published",
            metrics.publish_pending.clone(),
        );
        sub.register(
            "last_pass_timestamp_seconds",
            "When the last pass ended",
            metrics.last_pass.clone(),
        );
        for kind in ERROR_KINDS {
            let _ = metrics.errors.get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            });
        }
        metrics
    }

    /// Records the end of a pass: count, duration, time.
    pub fn pass_done(&self, elapsed: std::time::Duration) {
        self.pass_duration.observe(elapsed.as_secs_f64());
        self.window_done();
    }

    /// Records the end of a window that has no duration of its own (the
    /// log-pattern sensor's streaming run summaries): count and time.
    pub fn window_done(&self) {
        self.passes.inc();
        self.last_pass
            .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }
}
