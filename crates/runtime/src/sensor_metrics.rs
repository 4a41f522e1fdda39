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
        metrics
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
