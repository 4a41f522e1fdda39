//! The anomaly context: a compact JSON digest of recent deduplicated
//! findings and sensor problems, shaped for the decision investigator to
//! paste into an LLM root-cause prompt (short keys, no empty fields, most
//! severe and most recent first).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use inspector_domain::{FindingKind, SensorStatus, Severity};

use crate::core::ContextSnapshot;
use serde::{Deserialize, Serialize};

/// The anomaly context document (`GET /v1/anomaly-context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyContext {
    pub generated_at: DateTime<Utc>,
    /// How far back the findings go.
    pub window_minutes: u64,
    /// Global shadow mode (findings recorded, no alerts raised).
    pub shadow: bool,
    /// Findings in the window, before the cap.
    pub total_findings: usize,
    pub findings: Vec<ContextFinding>,
    /// Alerts firing or recently resolved, before the cap (the same cap as
    /// findings: most recently seen first).
    #[serde(default)]
    pub total_alerts: usize,
    /// Sensors that are stale or reported errors; healthy ones are omitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensor_problems: Vec<SensorProblem>,
    /// Alerts firing now and those resolved recently, with their times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<ContextAlert>,
}

/// One alert: which condition, since when, and whether it is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextAlert {
    pub kind: FindingKind,
    pub severity: Severity,
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `firing` or `resolved`.
    pub state: String,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
    pub summary: String,
    /// Recorded only, sent to nobody.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// One finding, reduced to what helps a root-cause analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextFinding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// Metric name or pattern key.
    pub key: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_to_breach: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub sensor: String,
}

/// A sensor the investigator should not trust blindly right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorProblem {
    pub sensor: String,
    pub stale: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn round(value: Option<f64>) -> Option<f64> {
    // Four significant decimals are plenty for a prompt and save tokens.
    value.map(|v| (v * 1e4).round() / 1e4)
}

impl AnomalyContext {
    /// Builds the context from the core's snapshot and sensor statuses.
    pub fn build(
        snapshot: ContextSnapshot,
        sensors: &[SensorStatus],
        shadow: bool,
        window: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Self {
        let ContextSnapshot {
            findings,
            total_findings,
            alerts,
            total_alerts,
        } = snapshot;
        AnomalyContext {
            generated_at: now,
            window_minutes: window.as_secs() / 60,
            shadow,
            total_findings,
            total_alerts,
            findings: findings
                .into_iter()
                .map(|f| {
                    let trend = f.trend();
                    let anomaly = f.anomaly();
                    ContextFinding {
                        kind: f.kind(),
                        severity: f.severity,
                        value: round(f.current_value()),
                        threshold: trend.map(|t| t.threshold),
                        expected: round(anomaly.map(|a| a.expected_mean)),
                        sigma: round(anomaly.map(|a| a.deviation_sigma)),
                        hours_to_breach: round(trend.and_then(|t| t.predicted_hours_to_breach)),
                        template: f.log().map(|l| l.template.clone()),
                        sensor: f.sensor().to_string(),
                        detected_at: f.detected_at,
                        key: f.observation.key,
                        labels: f.observation.labels,
                        summary: f.observation.description,
                    }
                })
                .collect(),
            sensor_problems: sensors
                .iter()
                .filter(|s| s.enabled && (s.stale || !s.errors.is_empty()))
                .map(|s| SensorProblem {
                    sensor: s.sensor.clone(),
                    stale: s.stale,
                    errors: s
                        .errors
                        .iter()
                        .take(10)
                        .map(|e| format!("{}: {}", e.subject, e.message))
                        .collect(),
                })
                .collect(),
            alerts: alerts
                .iter()
                .map(|a| ContextAlert {
                    kind: a.finding.kind(),
                    severity: a.finding.severity,
                    key: a.finding.key.clone(),
                    labels: a.finding.labels.clone(),
                    state: a.status.as_str().into(),
                    starts_at: a.starts_at,
                    ends_at: a.ends_at(),
                    last_seen_at: a.last_seen_at,
                    summary: a.finding.description.clone(),
                    shadow: a.shadow,
                })
                .collect(),
        }
    }
}
