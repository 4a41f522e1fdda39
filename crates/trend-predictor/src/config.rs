//! The trend predictor's configuration: which metrics to watch, their
//! thresholds, and how to reach Prometheus and NATS. Nothing is hard-coded;
//! see `deploy/config/trend-predictor.yaml` for an example.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use inspector_bus::NatsConfig;
use inspector_prometheus::PrometheusConfig;
use inspector_runtime::ShardConfig;
use serde::Deserialize;

/// The whole trend-predictor config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendPredictorConfig {
    /// Switch the sensor off: it serves health and publishes nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shadow mode: findings are marked shadow; the aggregator records them
    /// and raises no alert.
    #[serde(default)]
    pub shadow: bool,
    /// Time between passes.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How much recent history each fit uses.
    #[serde(default = "default_lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// Resolution of the range query.
    #[serde(default = "default_step", with = "humantime_serde")]
    pub step: Duration,
    /// Warn when the crossing is at most this far ahead (per metric overridable).
    #[serde(default = "default_horizon", with = "humantime_serde")]
    pub horizon: Duration,
    /// Queries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Fewer finite samples than this in a series: no fit, an error instead.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Which share of the metrics this replica owns.
    #[serde(default)]
    pub shard: ShardConfig,
    /// Address of the health and `/metrics` endpoints.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// NATS connection and subjects.
    #[serde(default)]
    pub nats: NatsConfig,
    /// Prometheus connection.
    pub prometheus: PrometheusConfig,
    /// The metrics to watch.
    pub metrics: Vec<MetricRule>,
}

/// One watched metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    /// Name used in findings and dedup keys, e.g. `disk_used_percent`.
    pub name: String,
    /// PromQL; every series it returns is fitted separately.
    pub query: String,
    /// The value that must not be crossed.
    pub threshold: f64,
    /// `above`: breach when rising to the threshold; `below`: when falling to it.
    #[serde(default)]
    pub direction: BreachDirection,
    /// What the metric means, for the finding's description.
    #[serde(default)]
    pub description: String,
    /// Overrides the global horizon for this metric.
    #[serde(default, with = "humantime_serde")]
    pub horizon: Option<Duration>,
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BreachDirection {
    #[default]
    Above,
    Below,
}

fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_lookback() -> Duration {
    Duration::from_secs(3600)
}
fn default_step() -> Duration {
    Duration::from_secs(60)
}
fn default_horizon() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_concurrency() -> usize {
    8
}
fn default_min_samples() -> usize {
    10
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9102))
}

impl TrendPredictorConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.nats.validate()?;
        self.prometheus.validate()?;
        if self.metrics.is_empty() {
            return Err("metrics: must list at least one metric (an empty list would idle, looking healthy)".into());
        }
        self.shard.validate()?;
        if self.interval.is_zero() {
            return Err("interval must be positive".into());
        }
        if self.step.is_zero() {
            return Err("step must be positive".into());
        }
        if self.lookback < self.step * 2 {
            return Err(format!(
                "lookback ({}) must cover at least two steps ({} each)",
                humantime::format_duration(self.lookback),
                humantime::format_duration(self.step)
            ));
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if self.min_samples < 2 {
            return Err("min_samples must be at least 2 (a line needs two points)".into());
        }
        let mut names = HashSet::new();
        for (i, rule) in self.metrics.iter().enumerate() {
            let at = |field: &str| format!("metrics[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err(format!("{}: must not be empty", at("name")));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(format!(
                    "{}: duplicate metric name {:?}",
                    at("name"),
                    rule.name
                ));
            }
            if rule.query.trim().is_empty() {
                return Err(format!("{}: must not be empty", at("query")));
            }
            if !rule.threshold.is_finite() {
                return Err(format!("{}: must be a finite number", at("threshold")));
            }
            if rule.horizon.is_some_and(|h| h.is_zero()) {
                return Err(format!("{}: must be positive", at("horizon")));
            }
        }
        Ok(())
    }

    /// The horizon that applies to `rule`.
    pub fn horizon_for(&self, rule: &MetricRule) -> Duration {
        rule.horizon.unwrap_or(self.horizon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TrendPredictorConfig, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), yaml).unwrap();
        let config: TrendPredictorConfig =
            inspector_runtime::load_config(Some(file.path()), []).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    const MINIMAL: &str = "prometheus: {url: 'http://p:9090'}\nmetrics:\n  - {name: disk, query: 'disk_used', threshold: 90}\n";

    #[test]
    fn defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.horizon, Duration::from_secs(4 * 3600));
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(config.metrics[0].direction, BreachDirection::Above);
        assert!(config.enabled);
        assert!(!config.shadow);
    }

    /// Every shipped config (local, Kubernetes, compose) loads and validates.
    #[test]
    fn the_shipped_configs_are_valid() {
        for path in inspector_runtime::config::shipped_configs("trend-predictor") {
            let config: TrendPredictorConfig = inspector_runtime::load_config(Some(&path), [])
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!config.metrics.is_empty());
        }
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            parse(&MINIMAL.replace("threshold: 90", "threshold: 90, treshold: 1")).unwrap_err();
        assert!(err.contains("treshold"), "{err}");
        let err = parse(&MINIMAL.replace("query: 'disk_used'", "query: ''")).unwrap_err();
        assert_eq!(err, "metrics[0].query: must not be empty");
        let err = parse(&format!(
            "{MINIMAL}  - {{name: disk, query: x, threshold: 1}}\n"
        ))
        .unwrap_err();
        assert!(err.starts_with("metrics[1].name: duplicate"), "{err}");
        let err = parse(&format!("lookback: 1m\n{MINIMAL}")).unwrap_err();
        assert!(err.starts_with("lookback"), "{err}");
        let err = parse(&MINIMAL.replace("threshold: 90", "threshold: 90, direction: sideways"))
            .unwrap_err();
        assert!(err.contains("sideways"), "{err}");
        let err = parse(&format!("shard: {{index: 3, count: 2}}\n{MINIMAL}")).unwrap_err();
        assert!(err.contains("shard.index"), "{err}");
    }

    /// Issue 10, case 9: no metric to watch is a config error, not a
    /// healthy idle; a bad Prometheus URL names the field, password hidden.
    #[test]
    fn empty_metrics_and_bad_urls_are_errors() {
        let err = parse("prometheus: {url: 'http://p:9090'}\nmetrics: []\n").unwrap_err();
        assert!(err.contains("metrics"), "{err}");
        let err = parse(
            "prometheus: {url: 'http://u:hunter2@'}\nmetrics:\n  - {name: a, query: up, threshold: 1}\n",
        )
        .unwrap_err();
        assert!(err.contains("prometheus.url"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
