//! The aggregator's configuration; see `deploy/config/aggregator.yaml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use inspector_bus::NatsConfig;
use serde::Deserialize;

/// The whole aggregator config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorConfig {
    /// Global shadow mode: record findings in reports, publish no alerts.
    #[serde(default)]
    pub shadow: bool,
    /// Time between inspection reports.
    #[serde(default = "default_report_interval", with = "humantime_serde")]
    pub report_interval: Duration,
    /// A finding with the same key inside this window is reported once.
    #[serde(default = "default_dedup_ttl", with = "humantime_serde")]
    pub dedup_ttl: Duration,
    /// How far back the anomaly context looks.
    #[serde(default = "default_context_window", with = "humantime_serde")]
    pub context_window: Duration,
    /// Most findings in the anomaly context (most severe and recent first).
    #[serde(default = "default_context_max")]
    pub context_max_findings: usize,
    /// Most findings listed in one report (most severe, then most recent,
    /// first); the rest are counted in `findings_omitted` (and in `counts`).
    /// A report also always fits the NATS server's max payload.
    #[serde(default = "default_report_max_findings")]
    pub report_max_findings: usize,
    /// Durable JetStream consumer name; replicas with the same name share it.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Most messages delivered and not yet acknowledged (JetStream stops
    /// delivering beyond it). Intake acknowledges each batch once handled,
    /// so this bounds the messages in flight, not a report window.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Redelivery deadline for a delivered message not acknowledged (its
    /// aggregator died while handling it); default 30 s.
    #[serde(default, with = "humantime_serde")]
    pub ack_wait: Option<Duration>,
    /// Address of the HTTP API (`/v1/...`) and, unless `ops_listen` is set,
    /// the health and metrics endpoints.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A separate address for `/healthz`, `/readyz` and `/metrics` (then
    /// not served on `listen`): probes and scrapes on one interface, the
    /// API, with its token, on another. Unset: both on `listen`.
    #[serde(default)]
    pub ops_listen: Option<SocketAddr>,
    /// NATS connection and subjects.
    #[serde(default)]
    pub nats: NatsConfig,
    /// Redis for shared dedup and the latest report.
    #[serde(default)]
    pub redis: RedisConfig,
    /// Expected sensors: switch one off (not expected, never stale) or put it
    /// in shadow mode. Sensors not listed are tracked when they report.
    #[serde(default = "default_sensors")]
    pub sensors: BTreeMap<String, SensorSettings>,
    /// How alerts resolve and how long resolved ones are shown.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Where alerts are pushed (none: nowhere but the stream and reports).
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    /// Who may read `/v1/*` (reports carry queries, labels and log lines).
    #[serde(default)]
    pub api: ApiConfig,
    /// How findings are placed (scope) and grouped into incidents.
    #[serde(default)]
    pub incidents: IncidentsConfig,
    /// How long reports and incident transitions are kept (JetStream).
    #[serde(default)]
    pub history: HistoryConfig,
}

/// Grouping findings into incidents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Findings whose scopes meet join one incident when one is seen within
    /// this long of a sighting already in it.
    #[serde(default = "default_incident_window", with = "humantime_serde")]
    pub window: Duration,
    /// An incident resolves this long after the last of its alerts resolved
    /// (a condition back within it keeps the incident open).
    #[serde(default = "default_incident_quiet_for", with = "humantime_serde")]
    pub quiet_for: Duration,
    /// Most open incidents held; a finding that would open one more stands
    /// alone (counted in `inspector_aggregator_incidents_refused_total`).
    #[serde(default = "default_incident_max_open")]
    pub max_open: usize,
    /// Label names that place a finding: namespace, owner, pod (resolved to
    /// its owner by the controllers' naming convention), loose workload
    /// names; each list is tried in order.
    #[serde(default)]
    pub scope: inspector_domain::ScopeRules,
    /// Pod owners looked up through the Kubernetes API (ownerReferences).
    #[serde(default)]
    pub owners: OwnersConfig,
}

/// Where pod owners are looked up; pod naming is the fallback either way.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerApi {
    /// Never ask the API.
    Off,
    /// The in-cluster service account, else the kubeconfig; neither found:
    /// no lookups (said once in the log).
    #[default]
    Auto,
    /// This API server URL, unauthenticated (a `kubectl proxy`, tests).
    Url(String),
}

/// Pod → owner lookups (Pod → ReplicaSet → Deployment, Pod → Job →
/// CronJob), cached; they never hold intake up for longer than `timeout`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnersConfig {
    /// Which API to ask.
    #[serde(default)]
    pub api: OwnerApi,
    /// How long a looked-up owner is trusted.
    #[serde(default = "default_owners_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// How long "no such pod" or "no owner" is trusted.
    #[serde(default = "default_owners_negative_ttl", with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Most pods cached (least recently used dropped first).
    #[serde(default = "default_owners_capacity")]
    pub capacity: usize,
    /// Longest a batch of findings waits for its lookups; what is not back
    /// by then falls back to pod naming (the lookup still fills the cache).
    #[serde(default = "default_owners_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// After the API fails or forbids, how long no lookup is tried.
    #[serde(default = "default_owners_retry_after", with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for OwnersConfig {
    fn default() -> Self {
        OwnersConfig {
            api: OwnerApi::default(),
            ttl: default_owners_ttl(),
            negative_ttl: default_owners_negative_ttl(),
            capacity: default_owners_capacity(),
            timeout: default_owners_timeout(),
            retry_after: default_owners_retry_after(),
        }
    }
}

fn default_owners_ttl() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_owners_negative_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_owners_capacity() -> usize {
    10_000
}
fn default_owners_timeout() -> Duration {
    Duration::from_millis(300)
}
fn default_owners_retry_after() -> Duration {
    Duration::from_secs(30)
}

/// Durable history of reports and incident transitions, on the JetStream
/// streams `<PREFIX>_REPORTS` and `<PREFIX>_INCIDENTS`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// How long a report or an incident transition is kept.
    #[serde(default = "default_history_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// Most bytes each history stream holds (oldest dropped first).
    #[serde(default = "default_history_max_bytes")]
    pub max_bytes: i64,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            window: default_incident_window(),
            quiet_for: default_incident_quiet_for(),
            max_open: default_incident_max_open(),
            scope: inspector_domain::ScopeRules::default(),
            owners: OwnersConfig::default(),
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            retention: default_history_retention(),
            max_bytes: default_history_max_bytes(),
        }
    }
}

fn default_incident_window() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_incident_quiet_for() -> Duration {
    Duration::from_secs(10 * 60)
}
fn default_incident_max_open() -> usize {
    1000
}
fn default_history_retention() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_history_max_bytes() -> i64 {
    1 << 30
}

/// Access to the HTTP API. `/healthz`, `/readyz` and `/metrics` stay open.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// A file holding the bearer token every `/v1/*` request must present
    /// (`Authorization: Bearer <token>`), e.g. a mounted Kubernetes Secret.
    /// Unset: no authentication (bind to loopback then).
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
}

/// Why the API token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error("api.bearer_token_file {}: unreadable", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("api.bearer_token_file {}: the token must be at least 16 characters", path.display())]
    TooShort { path: std::path::PathBuf },
}

impl ApiConfig {
    /// The token, read from its file (surrounding white space trimmed).
    pub fn bearer_token(&self) -> Result<Option<String>, ApiTokenError> {
        let Some(path) = &self.bearer_token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path).map_err(|source| ApiTokenError::Read {
            path: path.clone(),
            source,
        })?;
        let token = token.trim();
        if token.len() < 16 {
            return Err(ApiTokenError::TooShort { path: path.clone() });
        }
        Ok(Some(token.to_string()))
    }
}

/// The alert lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A firing alert resolves once the sensor instance that saw it has run
    /// this many passes without seeing it again (any instance of the sensor
    /// counts when that one has gone quiet).
    #[serde(default = "default_resolve_after_passes")]
    pub resolve_after_passes: u32,
    /// How long a resolved alert stays in reports, the anomaly context and
    /// the pushes to Alertmanager.
    #[serde(default = "default_resolved_retention", with = "humantime_serde")]
    pub resolved_retention: Duration,
}

/// Pushing alerts to Alertmanager (`POST /api/v2/alerts`), as Prometheus does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URLs, e.g. `http://alertmanager:9093`; every one gets every
    /// alert (an HA pair deduplicates by itself).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Timeout of one push, retries included.
    #[serde(default = "default_alertmanager_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How often every active alert is sent again, so an Alertmanager that
    /// restarted learns them back; default: the report interval. Firing
    /// alerts are sent with `endsAt` four resend intervals ahead.
    #[serde(default, with = "humantime_serde")]
    pub resend_interval: Option<Duration>,
    /// Base URL of this aggregator as users reach it, for each alert's
    /// `generatorURL` (`<external_url>/v1/report/latest`); default from
    /// `listen` and the host name.
    #[serde(default)]
    pub external_url: Option<String>,
}

/// Redis connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One Redis server: `redis://[user:password@]host:port[/db]`, or
    /// `rediss://` for TLS.
    #[serde(default = "default_redis_url")]
    pub url: String,
    /// Redis Cluster instead: seed nodes (`redis://host:port` each; the rest
    /// of the cluster is discovered, and a failover is followed). Give this
    /// or `url`, not both.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// Prefix of every key the aggregator writes.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Per-command timeout; past it the in-process fallback is used.
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// TLS for `rediss://` URLs: a private CA and a client certificate.
    #[serde(default)]
    pub tls: RedisTlsConfig,
}

/// TLS towards Redis (rustls with the process' ring provider). Without a
/// CA file the system's roots are trusted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTlsConfig {
    /// PEM CA certificate(s) that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with `key_file`.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// Client key (PEM), with `cert_file`.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
}

impl RedisTlsConfig {
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("redis.tls: cert_file and key_file go together".into());
        }
        for (field, path) in [
            ("redis.tls.ca_file", &self.ca_file),
            ("redis.tls.cert_file", &self.cert_file),
            ("redis.tls.key_file", &self.key_file),
        ] {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(format!("{field} {}: {e}", path.display()));
            }
        }
        Ok(())
    }
}

/// What the aggregator expects of one sensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSettings {
    /// Whether the sensor is expected to run (switched off: never stale).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Record this sensor's findings but raise no alerts for them.
    #[serde(default)]
    pub shadow: bool,
    /// Expected pass interval, used until its first run summary says otherwise.
    #[serde(default = "default_sensor_interval", with = "humantime_serde")]
    pub interval: Duration,
}

fn yes() -> bool {
    true
}
fn default_report_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_dedup_ttl() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_context_window() -> Duration {
    Duration::from_secs(3600)
}
fn default_context_max() -> usize {
    50
}
fn default_consumer() -> String {
    "aggregator".into()
}
fn default_max_ack_pending() -> i64 {
    20_000
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9100))
}
fn default_redis_url() -> String {
    "redis://127.0.0.1:6379".into()
}
fn default_key_prefix() -> String {
    "inspector".into()
}
fn default_redis_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_report_max_findings() -> usize {
    1000
}
fn default_resolve_after_passes() -> u32 {
    3
}
fn default_resolved_retention() -> Duration {
    Duration::from_secs(3600)
}
fn default_alertmanager_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_sensor_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_sensors() -> BTreeMap<String, SensorSettings> {
    ["trend-predictor", "baseline-detector", "log-pattern"]
        .into_iter()
        .map(|name| (name.to_string(), SensorSettings::default()))
        .collect()
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: default_redis_url(),
            cluster: Vec::new(),
            tls: RedisTlsConfig::default(),
            key_prefix: default_key_prefix(),
            timeout: default_redis_timeout(),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            resolve_after_passes: default_resolve_after_passes(),
            resolved_retention: default_resolved_retention(),
        }
    }
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            urls: Vec::new(),
            timeout: default_alertmanager_timeout(),
            resend_interval: None,
            external_url: None,
        }
    }
}

impl Default for SensorSettings {
    fn default() -> Self {
        SensorSettings {
            enabled: true,
            shadow: false,
            interval: default_sensor_interval(),
        }
    }
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            shadow: false,
            report_interval: default_report_interval(),
            dedup_ttl: default_dedup_ttl(),
            context_window: default_context_window(),
            context_max_findings: default_context_max(),
            report_max_findings: default_report_max_findings(),
            consumer: default_consumer(),
            max_ack_pending: default_max_ack_pending(),
            ack_wait: None,
            listen: default_listen(),
            ops_listen: None,
            nats: NatsConfig::default(),
            redis: RedisConfig::default(),
            sensors: default_sensors(),
            alerts: AlertsConfig::default(),
            alertmanager: AlertmanagerConfig::default(),
            api: ApiConfig::default(),
            incidents: IncidentsConfig::default(),
            history: HistoryConfig::default(),
        }
    }
}

impl AggregatorConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let day = Duration::from_secs(86_400);
        self.nats.validate()?;
        self.api
            .bearer_token()
            .map_err(|e| inspector_runtime::error_chain(&e))?;
        if self.incidents.window.is_zero() || self.incidents.window > day {
            return Err("incidents.window must be within (0, 24h]".into());
        }
        if self.incidents.quiet_for > day {
            return Err("incidents.quiet_for must be at most 24h".into());
        }
        if self.incidents.max_open == 0 {
            return Err("incidents.max_open must be at least 1".into());
        }
        let owners = &self.incidents.owners;
        if let OwnerApi::Url(url) = &owners.api
            && (!(url.starts_with("http://") || url.starts_with("https://"))
                || url.parse::<reqwest::Url>().is_err())
        {
            return Err(format!(
                "incidents.owners.api.url: {url:?} is not an http(s) URL"
            ));
        }
        if owners.capacity == 0 || owners.capacity > 1_000_000 {
            return Err("incidents.owners.capacity must be within [1, 1000000]".into());
        }
        if owners.timeout.is_zero() || owners.timeout > Duration::from_secs(10) {
            return Err("incidents.owners.timeout must be within (0, 10s]".into());
        }
        if owners.ttl.is_zero() || owners.negative_ttl.is_zero() || owners.retry_after.is_zero() {
            return Err(
                "incidents.owners.ttl, negative_ttl and retry_after must be above 0".into(),
            );
        }
        if self.history.retention < Duration::from_secs(60) || self.history.retention > day * 365 {
            return Err("history.retention must be within [1m, 365d]".into());
        }
        if self.history.max_bytes < 1 << 20 {
            return Err("history.max_bytes must be at least 1 MiB".into());
        }
        if self.alerts.resolve_after_passes == 0 {
            return Err("alerts.resolve_after_passes must be at least 1".into());
        }
        for url in &self.alertmanager.urls {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.parse::<reqwest::Url>().is_err()
            {
                return Err(format!("alertmanager.urls: {url:?} is not an http(s) URL"));
            }
        }
        if self.alertmanager.timeout.is_zero() {
            return Err("alertmanager.timeout must be positive".into());
        }
        // Bounded so `endsAt` (four resends ahead) and the timers stay far
        // from any overflow.
        if self
            .alertmanager
            .resend_interval
            .is_some_and(|d| d.is_zero() || d > day)
        {
            return Err("alertmanager.resend_interval must be within (0, 24h]".into());
        }
        if self.report_interval > day {
            return Err("report_interval must be at most 24h".into());
        }
        if self.alerts.resolved_retention > day * 30 {
            return Err("alerts.resolved_retention must be at most 30d".into());
        }
        if self.report_interval.is_zero() {
            return Err("report_interval must be positive".into());
        }
        if self.dedup_ttl.as_secs() == 0 {
            return Err("dedup_ttl must be at least 1s (Redis EX takes whole seconds)".into());
        }
        if self.consumer.is_empty() || self.consumer.contains(['.', '*', '>', ' ']) {
            return Err(format!(
                "consumer: {:?} is not a valid durable name",
                self.consumer
            ));
        }
        if self.max_ack_pending < 1 {
            return Err("max_ack_pending must be at least 1".into());
        }
        let is_redis_url = |url: &str| url.starts_with("redis://") || url.starts_with("rediss://");
        self.redis.tls.validate()?;
        let tls_urls = !self.redis.cluster.is_empty()
            && self.redis.cluster[0].starts_with("rediss://")
            || self.redis.cluster.is_empty() && self.redis.url.starts_with("rediss://");
        if self.redis.tls.is_set() && !tls_urls {
            return Err("redis.tls is set but the Redis URL is not rediss://".into());
        }
        if !self.redis.cluster.is_empty() && self.redis.url != default_redis_url() {
            return Err("redis: give url (one server) or cluster (seed nodes), not both".into());
        }
        if let Some(node) = self.redis.cluster.iter().find(|node| !is_redis_url(node)) {
            return Err(format!(
                "redis.cluster: {node:?} must start with redis:// or rediss://"
            ));
        }
        let fields = std::iter::once(("redis.url", &self.redis.url)).chain(
            self.redis
                .cluster
                .iter()
                .map(|node| ("redis.cluster", node)),
        );
        for (field, url) in fields {
            if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
                return Err(format!(
                    "{field}: {:?} is not a Redis URL",
                    inspector_domain::redact_url(url)
                ));
            }
        }
        if !is_redis_url(&self.redis.url) {
            return Err(format!(
                "redis.url must start with redis:// or rediss://, got {:?}",
                inspector_domain::redact_url(&self.redis.url)
            ));
        }
        if let Some(ack_wait) = self.ack_wait
            && ack_wait < Duration::from_secs(1)
        {
            return Err("ack_wait must be at least 1s (a batch must be handled within it)".into());
        }
        for (name, sensor) in &self.sensors {
            if sensor.interval.is_zero() {
                return Err(format!("sensors.{name}.interval must be positive"));
            }
        }
        Ok(())
    }

    /// How often active alerts are pushed again to Alertmanager.
    pub fn resend_interval(&self) -> Duration {
        self.alertmanager
            .resend_interval
            .unwrap_or(self.report_interval)
    }

    /// Acknowledgement deadline for held findings: they are acknowledged at
    /// the next report, so allow two report intervals and some slack.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait.unwrap_or(Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped config (local, Kubernetes, compose) loads and validates.
    #[test]
    fn the_shipped_configs_are_valid() {
        for path in inspector_runtime::config::shipped_configs("aggregator") {
            let config: AggregatorConfig = inspector_runtime::load_config(Some(&path), [])
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(config.sensors.contains_key("trend-predictor"));
            // The files show the defaults; they do not define others.
            assert_eq!(
                config.incidents,
                IncidentsConfig::default(),
                "{}",
                path.display()
            );
            assert_eq!(
                config.history,
                HistoryConfig::default(),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn defaults_and_validation() {
        let config = AggregatorConfig::default();
        config.validate().unwrap();
        assert_eq!(config.dedup_ttl, Duration::from_secs(1800));
        let bad = AggregatorConfig {
            consumer: "a.b".into(),
            ..AggregatorConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("consumer"));
        let bad = AggregatorConfig {
            redis: RedisConfig {
                url: "localhost:6379".into(),
                ..RedisConfig::default()
            },
            ..AggregatorConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("redis.url"));
    }

    /// Issue 10, case 9: a bad URL is an error naming the field, and a
    /// password in it is never printed.
    #[test]
    fn bad_urls_name_the_field_and_hide_the_password() {
        let mut config = AggregatorConfig::default();
        config.redis.url = "redis://:hunter2@bad host:6379".into();
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("redis"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let mut config = AggregatorConfig::default();
        config.nats.url = "nats://user:hunter2@[::1".into();
        let error = config.validate().unwrap_err();
        assert!(error.starts_with("nats.url"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let mut config = AggregatorConfig::default();
        config.alertmanager.urls = vec!["am:9093".into()];
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("alertmanager.urls")
        );
    }

    /// Durations that would overflow the alert arithmetic are refused.
    #[test]
    fn absurd_durations_are_errors() {
        let mut config = AggregatorConfig::default();
        config.alertmanager.resend_interval = Some(Duration::from_secs(u64::MAX / 4));
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("alertmanager.resend_interval")
        );
        let mut config = AggregatorConfig::default();
        config.alerts.resolved_retention = Duration::from_secs(u64::MAX / 4);
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("alerts.resolved_retention")
        );
    }
}
