//! Domain types of the inspector: what a sensor found, what a sensor pass did,
//! and the aggregator's inspection report.
//!
//! These are the types services compute with and serve as JSON. The protobuf
//! types of `inspector-proto` are only the wire form; [`wire`] converts between
//! the two and is the one place that knows both.

pub mod context;
pub mod incident;
pub mod scope;
pub mod wire;

pub use incident::{Incident, IncidentMember, IncidentState};
pub use scope::{Scope, ScopeMatch, ScopeRules, WorkloadKind};

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `url` with any `user:password@` replaced by `***@` and the values of
/// query parameters that name a secret (`token`, `password`, `key`,
/// `secret`, `auth`, `sig`...) by `***`: how every message, log line,
/// metric label and report shows a URL from a config.
pub fn redact_url(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    const SECRET_NAMES: [&str; 8] = [
        "pass",
        "token",
        "secret",
        "key",
        "auth",
        "sig",
        "credential",
        "session",
    ];
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if SECRET_NAMES
                    .iter()
                    .any(|secret| name.to_ascii_lowercase().contains(secret)) =>
            {
                format!("{name}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Namespace for deterministic finding ids (UUID v5).
const FINDING_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2a4e_93b1_4d2e_8a57_0c5e_1b7d_94a3);

/// What kind of thing a sensor noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A value far from its learned seasonal baseline.
    DynamicAnomaly,
    /// A log line shape never seen before.
    LogPattern,
    /// A metric trending towards its threshold, or already past it.
    TrendBreach,
}

impl FindingKind {
    /// All kinds, in report order.
    pub const ALL: [FindingKind; 3] = [
        FindingKind::DynamicAnomaly,
        FindingKind::LogPattern,
        FindingKind::TrendBreach,
    ];

    /// The sensor that produces this kind (its name in configs, run
    /// summaries and reports).
    pub fn sensor(self) -> &'static str {
        match self {
            FindingKind::DynamicAnomaly => "baseline-detector",
            FindingKind::LogPattern => "log-pattern",
            FindingKind::TrendBreach => "trend-predictor",
        }
    }

    /// The last token of this kind's findings subject (`<prefix>.findings.<token>`).
    pub fn subject_token(self) -> &'static str {
        match self {
            FindingKind::DynamicAnomaly => "baseline",
            FindingKind::LogPattern => "logs",
            FindingKind::TrendBreach => "trend",
        }
    }

    /// Stable lower-case name, used in subjects, dedup keys and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::DynamicAnomaly => "dynamic_anomaly",
            FindingKind::LogPattern => "log_pattern",
            FindingKind::TrendBreach => "trend_breach",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// All severities, least first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// Stable lower-case name, used in reports and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How well a fitted trend explains its data (see `inspector-trend` for the cut-offs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// What every finding has, whatever its kind: what was seen, where, how
/// bad, when and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Metric name, or log pattern key (workload + cluster id).
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    /// One human sentence saying what was seen.
    pub description: String,
    /// The query or log source the finding came from.
    pub source: String,
    pub detected_at: DateTime<Utc>,
    /// The producing sensor ran in shadow mode: record, never alert.
    pub shadow: bool,
    /// The producing sensor's instance (pod name / host).
    pub instance: String,
}

/// A metric trending towards its threshold, or already past it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendDetail {
    pub current_value: f64,
    pub threshold: f64,
    pub slope_per_hour: f64,
    pub r_squared: f64,
    pub confidence: Confidence,
    /// Hours until the fitted trend crosses the threshold; `None` when
    /// already past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_hours_to_breach: Option<f64>,
    /// The values the line was fitted to (the latest of them) and the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<LineEvidence>,
}

/// Most points of a finding's evidence series: enough to show the shape,
/// small enough (a few KB) to ride in every finding.
pub const MAX_EVIDENCE_POINTS: usize = 120;

/// One sample of a metric series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// One sample with what the baseline expected then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BandPoint {
    pub at: DateTime<Utc>,
    pub value: f64,
    /// The baseline's expected value at `at`.
    pub expected: f64,
    /// The baseline's σ at `at`: the band is `expected ± k·std`.
    pub std: f64,
}

/// A trend finding's series and its fitted line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineEvidence {
    /// In time order, at most [`MAX_EVIDENCE_POINTS`] (the latest).
    pub points: Vec<SeriesPoint>,
    /// The fitted line's value at `detected_at`; with `slope_per_hour` it
    /// gives the line at any time.
    pub fitted_at_detection: f64,
}

impl LineEvidence {
    /// The fitted line's value at `at`, given the finding's detection time.
    pub fn line_at(
        &self,
        slope_per_hour: f64,
        detected_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> f64 {
        let hours = (at - detected_at).num_milliseconds() as f64 / 3_600_000.0;
        self.fitted_at_detection + slope_per_hour * hours
    }
}

/// The latest [`MAX_EVIDENCE_POINTS`] of `points` (in time order).
pub fn latest_points<T>(mut points: Vec<T>) -> Vec<T> {
    let excess = points.len().saturating_sub(MAX_EVIDENCE_POINTS);
    points.drain(..excess);
    points
}

/// A value far from its learned seasonal baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetail {
    pub current_value: f64,
    /// The baseline's expected value for this time of day (of the week, for
    /// a weekly baseline).
    pub expected_mean: f64,
    /// The baseline's σ.
    pub expected_std: f64,
    /// How many σ the value is from the expected mean (signed).
    pub deviation_sigma: f64,
    /// The series before and at the finding against the baseline's band,
    /// in time order, at most [`MAX_EVIDENCE_POINTS`] (the latest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<BandPoint>,
}

/// A log line shape never seen before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPatternDetail {
    /// The template with `<*>` (and named placeholders) for variable tokens.
    pub template: String,
    /// A line that produced it.
    pub example: String,
}

/// What only one kind of finding has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FindingDetail {
    DynamicAnomaly(AnomalyDetail),
    LogPattern(LogPatternDetail),
    TrendBreach(TrendDetail),
}

impl FindingDetail {
    pub fn kind(&self) -> FindingKind {
        match self {
            FindingDetail::DynamicAnomaly(_) => FindingKind::DynamicAnomaly,
            FindingDetail::LogPattern(_) => FindingKind::LogPattern,
            FindingDetail::TrendBreach(_) => FindingKind::TrendBreach,
        }
    }
}

/// One thing a sensor noticed: the shared observation and its kind's detail.
/// Built through [`Finding::trend_breach`], [`Finding::dynamic_anomaly`] or
/// [`Finding::log_pattern`], which compute the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic id (see [`Finding::compute_id`]); the JetStream `Nats-Msg-Id`.
    pub id: String,
    #[serde(flatten)]
    pub observation: Observation,
    #[serde(flatten)]
    pub detail: FindingDetail,
}

impl std::ops::Deref for Finding {
    type Target = Observation;

    fn deref(&self) -> &Observation {
        &self.observation
    }
}

impl std::ops::DerefMut for Finding {
    fn deref_mut(&mut self) -> &mut Observation {
        &mut self.observation
    }
}

impl Finding {
    /// A trend finding, with its id.
    pub fn trend_breach(observation: Observation, detail: TrendDetail) -> Self {
        Finding::new(observation, FindingDetail::TrendBreach(detail))
    }

    /// A baseline-deviation finding, with its id.
    pub fn dynamic_anomaly(observation: Observation, detail: AnomalyDetail) -> Self {
        Finding::new(observation, FindingDetail::DynamicAnomaly(detail))
    }

    /// A new-log-shape finding, with its id.
    pub fn log_pattern(observation: Observation, detail: LogPatternDetail) -> Self {
        Finding::new(observation, FindingDetail::LogPattern(detail))
    }

    fn new(observation: Observation, detail: FindingDetail) -> Self {
        Finding {
            id: String::new(),
            observation,
            detail,
        }
        .with_computed_id()
    }

    pub fn kind(&self) -> FindingKind {
        self.detail.kind()
    }

    /// The sensor that produces this kind of finding.
    pub fn sensor(&self) -> &'static str {
        self.kind().sensor()
    }

    /// The observed value (metric findings).
    pub fn current_value(&self) -> Option<f64> {
        match &self.detail {
            FindingDetail::TrendBreach(d) => Some(d.current_value),
            FindingDetail::DynamicAnomaly(d) => Some(d.current_value),
            FindingDetail::LogPattern(_) => None,
        }
    }

    pub fn trend(&self) -> Option<&TrendDetail> {
        match &self.detail {
            FindingDetail::TrendBreach(d) => Some(d),
            _ => None,
        }
    }

    pub fn anomaly(&self) -> Option<&AnomalyDetail> {
        match &self.detail {
            FindingDetail::DynamicAnomaly(d) => Some(d),
            _ => None,
        }
    }

    pub fn log(&self) -> Option<&LogPatternDetail> {
        match &self.detail {
            FindingDetail::LogPattern(d) => Some(d),
            _ => None,
        }
    }
}

impl Finding {
    /// Key under which the aggregator deduplicates: kind + metric/pattern + labels.
    /// Two findings with the same key inside the dedup window are one finding.
    pub fn dedup_key(&self) -> String {
        let mut key = format!("{}|{}", self.kind(), self.key);
        for (name, value) in &self.labels {
            key.push('|');
            key.push_str(name);
            key.push('=');
            key.push_str(value);
        }
        key
    }

    /// Deterministic id from what was observed, by whom and when, so that a
    /// re-published finding (a retry) carries the same id and JetStream's
    /// duplicate window drops it.
    pub fn compute_id(&self) -> String {
        let name = format!(
            "{}|{}|{}|{}",
            self.sensor(),
            self.instance,
            self.dedup_key(),
            self.detected_at.timestamp_millis()
        );
        uuid::Uuid::new_v5(&FINDING_ID_NAMESPACE, name.as_bytes()).to_string()
    }

    /// The finding without its evidence series (where it is kept per
    /// condition, e.g. in incident members, the shape is not needed).
    pub fn without_evidence(mut self) -> Self {
        match &mut self.detail {
            FindingDetail::DynamicAnomaly(d) => d.evidence = Vec::new(),
            FindingDetail::TrendBreach(d) => d.evidence = None,
            FindingDetail::LogPattern(_) => {}
        }
        self
    }

    /// Fills in [`Finding::id`] from [`Finding::compute_id`].
    pub fn with_computed_id(mut self) -> Self {
        self.id = self.compute_id();
        self
    }

    /// `name{a="1",b="2"}`, the way an operator reads a series.
    pub fn series_name(&self) -> String {
        if self.labels.is_empty() {
            return self.key.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{}{{{}}}", self.key, labels.join(","))
    }
}

/// One error a sensor met during a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorError {
    /// What the error is about: a metric name, a pod, "prometheus"...
    pub subject: String,
    pub message: String,
}

/// Summary of one sensor pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorRun {
    pub sensor: String,
    pub instance: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub findings: u32,
    pub errors: Vec<SensorError>,
    /// The sensor's pass interval, for the aggregator's staleness judgement.
    pub interval_seconds: u64,
    pub shadow: bool,
    /// Series watched but not judged yet (no model before the first fit).
    #[serde(default)]
    pub warming_up: u32,
}

/// Health of one sensor as the aggregator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorStatus {
    pub sensor: String,
    pub enabled: bool,
    pub stale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<DateTime<Utc>>,
    pub instances: Vec<String>,
    pub errors: Vec<SensorError>,
    pub shadow: bool,
    /// Series still warming up, by the latest run of each instance.
    #[serde(default)]
    pub warming_up: u32,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition is still being seen (or not yet for long enough gone).
    Firing,
    /// The owning sensors ran and stopped seeing it.
    Resolved { ends_at: DateTime<Utc> },
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved { .. } => "resolved",
        }
    }
}

/// A condition a sensor keeps seeing, from its first sighting to its
/// resolution; one per dedup key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The finding's dedup key.
    pub key: String,
    pub status: AlertStatus,
    pub starts_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The latest sighting.
    pub finding: Finding,
    /// Recorded only (shadow mode): never sent to anyone.
    pub shadow: bool,
    /// The incident the condition belongs to, once it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

impl Alert {
    pub fn is_firing(&self) -> bool {
        self.status == AlertStatus::Firing
    }

    /// When it ended, if it has.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            AlertStatus::Firing => None,
            AlertStatus::Resolved { ends_at } => Some(ends_at),
        }
    }

    /// Stable id of this transition (firing or resolved of this episode),
    /// the `Nats-Msg-Id` of its event.
    pub fn event_id(&self) -> String {
        let name = format!(
            "alert|{}|{}|{}",
            self.key,
            self.status.as_str(),
            self.starts_at.timestamp_millis()
        );
        uuid::Uuid::new_v5(&FINDING_ID_NAMESPACE, name.as_bytes()).to_string()
    }
}

/// How pushing alerts to one target (an Alertmanager) went over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    pub target: String,
    pub attempts: u32,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The aggregator's inspection report for one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionReport {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Findings first seen (not deduplicated) in the window.
    pub findings: Vec<Finding>,
    /// Number of findings per kind; every kind is present, zero included.
    pub counts: BTreeMap<FindingKind, u32>,
    pub duplicates_suppressed: u32,
    pub sensors: Vec<SensorStatus>,
    pub shadow: bool,
    pub malformed_messages: u32,
    pub dedup_backend: String,
    pub dedup_degraded: bool,
    pub alerts_published: u32,
    pub aggregator_instance: String,
    /// Alerts firing at the end of the window, and those resolved recently.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// Delivery to each Alertmanager in the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_delivery: Vec<DeliveryStatus>,
    /// New findings of the window not listed (over the report's cap or its
    /// size limit); `counts` includes them.
    #[serde(default)]
    pub findings_omitted: u32,
    /// Alerts not listed for the size limit.
    #[serde(default)]
    pub alerts_omitted: u32,
    /// Incidents open at the end of the window, and those closed recently.
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

impl InspectionReport {
    /// Trims the listed findings (least important last) and then alerts
    /// (resolved first) until `encoded_len` says the report fits `max_bytes`,
    /// counting what it left out.
    pub fn fit(&mut self, max_bytes: usize, encoded_len: impl Fn(&InspectionReport) -> usize) {
        while encoded_len(self) > max_bytes && !self.findings.is_empty() {
            let keep = self.findings.len() / 2;
            let dropped = self.findings.len() - keep;
            self.findings.truncate(keep);
            self.findings_omitted = self.findings_omitted.saturating_add(dropped as u32);
        }
        // Then incidents, open ones kept longest.
        self.incidents.sort_by_key(|incident| !incident.is_open());
        while encoded_len(self) > max_bytes && !self.incidents.is_empty() {
            self.incidents.truncate(self.incidents.len() / 2);
        }
        // Firing alerts before resolved ones, so trimming drops resolved first.
        self.alerts.sort_by_key(|alert| !alert.is_firing());
        while encoded_len(self) > max_bytes && !self.alerts.is_empty() {
            let keep = self.alerts.len() / 2;
            let dropped = self.alerts.len() - keep;
            self.alerts.truncate(keep);
            self.alerts_omitted = self.alerts_omitted.saturating_add(dropped as u32);
        }
    }
}

impl InspectionReport {
    /// Counts per kind of `findings`, with every kind present.
    pub fn count_by_kind(findings: &[Finding]) -> BTreeMap<FindingKind, u32> {
        let mut counts: BTreeMap<FindingKind, u32> =
            FindingKind::ALL.iter().map(|kind| (*kind, 0)).collect();
        for finding in findings {
            *counts.entry(finding.kind()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(
            redact_url("https://u:p@am:9093/x?api_token=abc&team=ops&X-Amz-Signature=f00"),
            "https://***@am:9093/x?api_token=***&team=ops&X-Amz-Signature=***"
        );
        assert_eq!(redact_url("nats://n1:4222"), "nats://n1:4222");
        assert_eq!(redact_url("redis://:pw@r:6379/0"), "redis://***@r:6379/0");
    }

    pub(crate) fn sample_finding() -> Finding {
        Finding::trend_breach(
            Observation {
                key: "disk_used_percent".into(),
                labels: BTreeMap::from([
                    ("mountpoint".to_string(), "/".to_string()),
                    ("instance".to_string(), "node-1".to_string()),
                ]),
                severity: Severity::Warning,
                description: "rising".into(),
                source: "disk_used_percent".into(),
                detected_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                shadow: false,
                instance: "pod-0".into(),
            },
            TrendDetail {
                current_value: 70.0,
                threshold: 90.0,
                slope_per_hour: 10.0,
                r_squared: 0.99,
                confidence: Confidence::High,
                predicted_hours_to_breach: Some(2.0),
                evidence: None,
            },
        )
    }

    #[test]
    fn dedup_key_is_independent_of_label_insertion_order_and_time() {
        let a = sample_finding();
        let mut b = a.clone();
        b.labels = a
            .labels
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        b.detected_at = a.detected_at + chrono::Duration::minutes(5);
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_eq!(
            a.dedup_key(),
            "trend_breach|disk_used_percent|instance=node-1|mountpoint=/"
        );
        // ...but the id differs, because it is a different observation.
        assert_ne!(a.compute_id(), b.with_computed_id().id);
    }

    #[test]
    fn id_is_deterministic() {
        assert_eq!(sample_finding().id, sample_finding().id);
        assert_eq!(sample_finding().id.len(), 36);
    }

    #[test]
    fn json_is_flat_and_omits_absent_fields() {
        let mut finding = sample_finding();
        if let FindingDetail::TrendBreach(trend) = &mut finding.detail {
            trend.predicted_hours_to_breach = None;
        }
        let json = serde_json::to_value(&finding).unwrap();
        assert!(json.get("predicted_hours_to_breach").is_none());
        assert!(json.get("expected_mean").is_none());
        assert_eq!(json["kind"], "trend_breach");
        assert_eq!(json["severity"], "warning");
        assert_eq!(json["slope_per_hour"], 10.0);
        assert_eq!(json["key"], "disk_used_percent");
        let back: Finding = serde_json::from_value(json).unwrap();
        assert_eq!(back, finding);
    }

    #[test]
    fn counts_include_every_kind() {
        let counts = InspectionReport::count_by_kind(&[sample_finding(), sample_finding()]);
        assert_eq!(counts[&FindingKind::TrendBreach], 2);
        assert_eq!(counts[&FindingKind::LogPattern], 0);
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn series_name_reads_like_promql() {
        assert_eq!(
            sample_finding().series_name(),
            "disk_used_percent{instance=\"node-1\",mountpoint=\"/\"}"
        );
    }
}
