//! The demo's bundled metric scenario: a deterministic, clock-relative
//! history served through the same [`MetricSource`] interface the trend
//! predictor and the baseline detector use against Prometheus.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inspector_prometheus::MetricSource;
use inspector_prometheus::{PrometheusError, Sample, Series};

/// One synthetic series: value at `hours_ago` hours before now.
#[derive(Debug, Clone)]
struct SyntheticSeries {
    labels: BTreeMap<String, String>,
    shape: fn(f64, usize) -> f64,
}

/// Metric name → its series.
#[derive(Debug, Clone)]
pub struct Scenario {
    metrics: BTreeMap<&'static str, Vec<SyntheticSeries>>,
}

/// Small deterministic wobble so fits are realistic, not exact.
fn wobble(i: usize, amplitude: f64) -> f64 {
    ((i as f64) * 1.7).sin() * amplitude
}

/// `mean ± amplitude` over a day, peaking `peak_hours_ago` hours before now
/// (and every 24 h before that).
fn daily_cycle(hours_ago: f64, mean: f64, amplitude: f64, peak_hours_ago: f64) -> f64 {
    mean + amplitude * ((hours_ago - peak_hours_ago) / 24.0 * std::f64::consts::TAU).cos()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Scenario {
    /// The bundled scenario and the trend-predictor config (YAML) watching it.
    pub fn bundled() -> Self {
        let mut metrics = BTreeMap::new();
        // Filling at 10 %/h: 70 % now, 90 % in about 2 h.
        metrics.insert(
            "disk_used_percent",
            vec![
                SyntheticSeries {
                    labels: labels(&[("mount", "/var/lib/postgresql"), ("node", "db-1")]),
                    shape: |hours_ago, i| 70.0 - 10.0 * hours_ago + wobble(i, 0.3),
                },
                SyntheticSeries {
                    labels: labels(&[("mount", "/"), ("node", "db-1")]),
                    shape: |_, i| 41.0 + wobble(i, 0.2),
                },
            ],
        );
        // Free memory falling 12 points/h: 28 % now, 10 % in about 1.5 h.
        metrics.insert(
            "memory_available_percent",
            vec![SyntheticSeries {
                labels: labels(&[("node", "worker-2")]),
                shape: |hours_ago, i| 28.0 + 12.0 * hours_ago + wobble(i, 0.5),
            }],
        );
        // Noisy but flat latency: nothing to report.
        metrics.insert(
            "checkout_p99_latency_seconds",
            vec![SyntheticSeries {
                labels: labels(&[("service", "checkout")]),
                shape: |_, i| 0.25 + wobble(i, 0.05),
            }],
        );
        // Request rates with a daily cycle (seven days of history, so the
        // baseline detector learns the day's shape). Checkout spikes to
        // triple its usual rate in the last ten minutes; search is at its
        // ordinary daily peak, which is not an anomaly.
        metrics.insert(
            "http_requests_per_second",
            vec![
                SyntheticSeries {
                    labels: labels(&[("service", "checkout")]),
                    shape: |hours_ago, i| {
                        let usual = daily_cycle(hours_ago, 120.0, 80.0, 3.0) + wobble(i, 2.0);
                        if hours_ago < 10.0 / 60.0 {
                            usual + 360.0
                        } else {
                            usual
                        }
                    },
                },
                SyntheticSeries {
                    labels: labels(&[("service", "search")]),
                    shape: |hours_ago, i| {
                        daily_cycle(hours_ago, 300.0, 200.0, 0.0) + wobble(i, 4.0)
                    },
                },
            ],
        );
        // Already past its threshold.
        metrics.insert(
            "email_queue_depth",
            vec![SyntheticSeries {
                labels: labels(&[("queue", "outbound-email")]),
                shape: |hours_ago, i| 5200.0 - 300.0 * hours_ago + wobble(i, 20.0),
            }],
        );
        Scenario { metrics }
    }

    /// Every series as `(metric, labels, value)` at time `t`, for a scenario
    /// whose "now" is `anchor`: after the anchor each shape carries on (the
    /// disk keeps filling, the checkout spike keeps going), so a live
    /// exporter continues a history written at the anchor.
    pub fn values_at(
        &self,
        anchor: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> Vec<(&'static str, &BTreeMap<String, String>, f64)> {
        let hours_ago = (anchor - t).num_milliseconds() as f64 / 3.6e6;
        // The wobble's index: minutes since the epoch, the same for history and live.
        let i = (t.timestamp() / 60).unsigned_abs() as usize;
        self.metrics
            .iter()
            .flat_map(|(metric, series)| {
                series
                    .iter()
                    .map(move |s| (*metric, &s.labels, (s.shape)(hours_ago, i)))
            })
            .collect()
    }

    /// Trend-predictor metric rules for the scenario (YAML list items).
    pub const RULES: &'static str = concat!(
        "  - {name: disk_used_percent, query: disk_used_percent, threshold: 90, description: filesystem usage}\n",
        "  - {name: memory_available_percent, query: memory_available_percent, threshold: 10, direction: below, description: memory left}\n",
        "  - {name: checkout_p99_latency_seconds, query: checkout_p99_latency_seconds, threshold: 1.0, description: checkout p99 latency}\n",
        "  - {name: email_queue_depth, query: email_queue_depth, threshold: 5000, description: outbound email backlog}\n",
    );

    /// Baseline-detector metrics for the scenario (YAML list items).
    pub const BASELINES: &'static str = "  - {name: http_requests_per_second, query: http_requests_per_second, description: request rate}\n";
}

impl MetricSource for Scenario {
    async fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let Some(series) = self.metrics.get(query) else {
            return Ok(Vec::new());
        };
        let step_ms = step.as_millis().max(1) as i64;
        let (start_ms, end_ms) = (start.timestamp_millis(), end.timestamp_millis());
        Ok(series
            .iter()
            .map(|s| {
                let mut labels = s.labels.clone();
                labels.insert("__name__".into(), query.to_string());
                let samples = (0..)
                    .map(|i| (i, start_ms + i as i64 * step_ms))
                    .take_while(|(_, t)| *t <= end_ms)
                    .map(|(i, t)| Sample {
                        t_ms: t,
                        value: (s.shape)((end_ms - t) as f64 / 3.6e6, i),
                    })
                    .collect();
                Series { labels, samples }
            })
            .collect())
    }

    async fn query(
        &self,
        query: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<Series>, PrometheusError> {
        // The value now, as the last sample of a one-step range.
        let mut series = self
            .query_range(query, time, time, Duration::from_secs(60))
            .await?;
        for one in &mut series {
            one.samples.truncate(1);
        }
        Ok(series)
    }
}

/// The demo's log scenario: a checkout service's ordinary lines (the
/// warm-up), then two line shapes it never printed before.
pub fn checkout_log_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..40u32 {
        lines.push(match i % 4 {
            0 => format!("GET /api/cart/{} 200 in {}ms", 1000 + i, 12 + i % 7),
            1 => format!(
                "POST /api/checkout order={} items={} total={}.{:02} EUR",
                5000 + i,
                1 + i % 5,
                20 + i,
                i % 100
            ),
            2 => format!(
                "payment authorized for order {} via provider stripe in {}ms",
                5000 + i,
                80 + i
            ),
            _ => format!("cache hit ratio {}% over {} requests", 90 + i % 9, 200 + i),
        });
    }
    lines.push(
        "java.net.SocketTimeoutException: Read timed out calling payments at 10.0.4.17:8443".into(),
    );
    lines.push("GET /api/cart/2041 200 in 14ms".into());
    lines.push("circuit breaker OPEN for payments after 5 consecutive failures".into());
    lines.push(
        "java.net.SocketTimeoutException: Read timed out calling payments at 10.0.4.18:8443".into(),
    );
    lines
}

/// Log-pattern config for the demo (in-process, no snapshot).
pub const LOG_CONFIG: &str =
    "warmup_lines: 40\ninterval: 1h\nsource: {kind: file, path: '-', workload: checkout}\n";
