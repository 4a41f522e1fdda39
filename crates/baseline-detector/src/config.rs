//! The baseline detector's configuration; see `deploy/config/baseline-detector.yaml`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use inspector_baseline::{Policy, Thresholds};
use inspector_bus::NatsConfig;
use inspector_prometheus::PrometheusConfig;
use inspector_runtime::ShardConfig;
use serde::Deserialize;

/// The whole baseline-detector config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineDetectorConfig {
    /// Switch the sensor off: it serves health and publishes nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shadow mode: findings are marked shadow (recorded, no alerts).
    #[serde(default)]
    pub shadow: bool,
    /// Time between detection passes.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time between background retrains.
    #[serde(default = "default_retrain", with = "humantime_serde")]
    pub retrain_interval: Duration,
    /// History each daily baseline learns from (at least two days).
    #[serde(default = "default_lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// History a weekly baseline learns from, for a series whose last week
    /// predicts it significantly better than its yesterday (weekday/weekend
    /// traffic), and kept while it still does; `0s` fits daily baselines
    /// only. At least three weeks: the test compares two weeks, each value
    /// with the one a week before. The training query then asks for this
    /// much history (Prometheus must retain it).
    #[serde(default = "default_weekly_lookback", with = "humantime_serde")]
    pub weekly_lookback: Duration,
    /// Resolution of the training range query; a day must be a whole number of steps.
    /// The sustained and level detectors judge the last hour's median, or
    /// the last [`inspector_baseline::ROBUST_SPAN`] (3) steps' when an hour
    /// holds fewer (a step over 20 minutes). The variance detector needs
    /// [`inspector_baseline::ROUGHNESS_CHANGES`] (5) changes in an hour, so
    /// a step of 10 minutes or less.
    #[serde(default = "default_step", with = "humantime_serde")]
    pub step: Duration,
    /// After a series is reported, it reports nothing more for this long.
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// Deviation (σ) at which a value is a warning.
    #[serde(default = "default_warning")]
    pub warning_sigma: f64,
    /// Deviation (σ) at which a value is critical.
    #[serde(default = "default_critical")]
    pub critical_sigma: f64,
    /// Report only what the series has not done within `memory`: a value
    /// further from its expected value than any before, an hour more
    /// disturbed (level shift, variance burst) or rougher (median change
    /// between samples) than any before, or an hour's level outside every
    /// hour's before. A series
    /// that strays 6σ every week stays quiet on an ordinary week. Off: every
    /// value past the warning σ is reported (once per cooldown).
    #[serde(default = "default_novel_only")]
    pub novel_only: bool,
    /// How far back "new" looks for `novel_only`: the references of every
    /// baseline fitted within it, and the hours the detector watched.
    #[serde(default = "default_memory", with = "humantime_serde")]
    pub memory: Duration,
    /// Queries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
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
    pub metrics: Vec<WatchedMetric>,
}

/// One watched metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedMetric {
    /// Name used in findings and dedup keys.
    pub name: String,
    /// PromQL; one baseline per returned series.
    pub query: String,
    /// What the metric means, for the finding's description.
    #[serde(default)]
    pub description: String,
}

fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
// The judgement's defaults are the policy's (`inspector_baseline::Policy`),
// defined once for the sensor and the NAB replay.
fn default_retrain() -> Duration {
    Policy::default().refit_every
}
fn default_lookback() -> Duration {
    Policy::default().lookback
}
fn default_weekly_lookback() -> Duration {
    Policy::default().weekly_lookback
}
fn default_step() -> Duration {
    Duration::from_secs(300)
}
fn default_cooldown() -> Duration {
    Policy::default().cooldown
}
fn default_warning() -> f64 {
    Policy::default().thresholds.warning_sigma
}
fn default_critical() -> f64 {
    Policy::default().thresholds.critical_sigma
}
fn default_novel_only() -> bool {
    Policy::default().thresholds.novel_only
}
fn default_memory() -> Duration {
    Policy::default().memory
}
fn default_concurrency() -> usize {
    8
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9101))
}

impl BaselineDetectorConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.nats.validate()?;
        self.prometheus.validate()?;
        if self.metrics.is_empty() {
            return Err("metrics: must list at least one metric (an empty list would idle, looking healthy)".into());
        }
        self.shard.validate()?;
        if self.step.is_zero()
            || 86_400 % self.step.as_secs().max(1) != 0
            || self.step.as_secs() == 0
        {
            return Err("step must be a whole number of seconds dividing a day".into());
        }
        if self.lookback < Duration::from_secs(2 * 86_400) {
            return Err("lookback must cover at least two days (two seasons)".into());
        }
        if !self.weekly_lookback.is_zero()
            && self.weekly_lookback < Duration::from_secs(21 * 86_400)
        {
            return Err(
                "weekly_lookback must cover at least three weeks (two weeks of week-on-week comparisons), or be 0s to fit daily baselines only"
                    .into(),
            );
        }
        // Training answers are streamed and fitted series by series, which
        // needs each rule's history in one request.
        let (field, history) = if self.weekly_lookback > self.lookback {
            ("weekly_lookback", self.weekly_lookback)
        } else {
            ("lookback", self.lookback)
        };
        let points = history.as_secs() / self.step.as_secs().max(1);
        let max_points = u64::from(self.prometheus.max_points_per_request);
        if points > max_points {
            return Err(format!(
                "{field} / step = {points} points per series; training asks them in one request, so it must be at most prometheus.max_points_per_request ({max_points}, up to 11000): use a larger step or a shorter {field}"
            ));
        }
        if self.interval.is_zero() || self.retrain_interval.is_zero() {
            return Err("interval and retrain_interval must be positive".into());
        }
        if !(self.warning_sigma > 0.0 && self.critical_sigma >= self.warning_sigma) {
            return Err(
                "warning_sigma must be positive and critical_sigma at least warning_sigma".into(),
            );
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if self.memory < self.lookback {
            return Err(format!(
                "memory ({}) must be at least the lookback ({}): \"new\" looks at least as far back as a baseline learns",
                humantime::format_duration(self.memory),
                humantime::format_duration(self.lookback)
            ));
        }
        let mut names = HashSet::new();
        for (i, metric) in self.metrics.iter().enumerate() {
            if metric.name.trim().is_empty() {
                return Err(format!("metrics[{i}].name: must not be empty"));
            }
            if !names.insert(metric.name.as_str()) {
                return Err(format!(
                    "metrics[{i}].name: duplicate metric name {:?}",
                    metric.name
                ));
            }
            if metric.query.trim().is_empty() {
                return Err(format!("metrics[{i}].query: must not be empty"));
            }
        }
        Ok(())
    }

    /// Steps in a day (the season length).
    pub fn period(&self) -> usize {
        Policy::period(self.step_ms())
    }

    pub fn step_ms(&self) -> i64 {
        i64::try_from(self.step.as_millis()).unwrap_or(i64::MAX)
    }

    /// The per-series judgement this config asks for.
    pub fn policy(&self) -> Policy {
        Policy {
            thresholds: Thresholds {
                warning_sigma: self.warning_sigma,
                critical_sigma: self.critical_sigma,
                novel_only: self.novel_only,
            },
            lookback: self.lookback,
            weekly_lookback: self.weekly_lookback,
            refit_every: self.retrain_interval,
            cooldown: self.cooldown,
            memory: self.memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped config (local, Kubernetes, compose) loads and validates.
    #[test]
    fn the_shipped_configs_are_valid() {
        for path in inspector_runtime::config::shipped_configs("baseline-detector") {
            let config: BaselineDetectorConfig = inspector_runtime::load_config(Some(&path), [])
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(config.period(), 288);
            // Shipped configs run the policy's chosen defaults (chosen on
            // NAB, see `inspector_baseline::Policy::default`).
            assert_eq!(config.policy(), Policy::default(), "{}", path.display());
        }
    }

    #[test]
    fn errors_name_the_field() {
        let base = "prometheus: {url: 'http://p:9090'}\nmetrics:\n  - {name: a, query: up}\n";
        let parse = |yaml: &str| -> Result<(), String> {
            let config: BaselineDetectorConfig =
                inspector_runtime::load_config_from_str(yaml).map_err(|e| e.to_string())?;
            config.validate()
        };
        assert!(parse(base).is_ok());
        assert!(
            parse(&format!("step: 7m\n{base}"))
                .unwrap_err()
                .starts_with("step")
        );
        assert!(
            parse(&format!("lookback: 1d\n{base}"))
                .unwrap_err()
                .starts_with("lookback")
        );
        assert!(
            parse(&format!("weekly_lookback: 10d\n{base}"))
                .unwrap_err()
                .starts_with("weekly_lookback must cover")
        );
        assert!(parse(&format!("weekly_lookback: 0s\n{base}")).is_ok());
        assert!(
            parse(&format!("step: 120s\n{base}"))
                .unwrap_err()
                .starts_with("weekly_lookback / step")
        );
        assert!(parse(&format!("step: 120s\nweekly_lookback: 0s\n{base}")).is_ok());
        assert!(
            parse(&format!("memory: 3d\n{base}"))
                .unwrap_err()
                .starts_with("memory")
        );
        assert!(
            parse(&format!("critical_sigma: 2\n{base}"))
                .unwrap_err()
                .starts_with("warning_sigma")
        );
        assert!(
            parse(&base.replace("query: up", "query: ''"))
                .unwrap_err()
                .starts_with("metrics[0].query")
        );
    }
}
