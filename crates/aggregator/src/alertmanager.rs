//! Pushing alerts to Alertmanager (`POST /api/v2/alerts`), the way
//! Prometheus does: every firing alert with an `endsAt` a few resend
//! intervals ahead, sent again every resend interval (so an Alertmanager
//! that restarted learns them back) and at once on a transition; a resolved
//! alert with its real `endsAt` for as long as it is retained. Every
//! configured Alertmanager gets every alert (an HA pair deduplicates by
//! itself). Shadow alerts are never sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, SecondsFormat, Utc};
use inspector_domain::{Alert, DeliveryStatus, FindingDetail, FindingKind};
use serde_json::{Value, json};

use crate::config::AlertmanagerConfig;
use crate::metrics::AggregatorMetrics;

/// Alertmanager treats a firing alert whose `endsAt` passed as resolved:
/// send it this many resend intervals ahead (Prometheus uses 4).
const ENDS_AT_RESENDS: i32 = 4;

/// The `alertname` of each kind of alert.
pub fn alert_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::TrendBreach => "InspectorTrendBreach",
        FindingKind::DynamicAnomaly => "InspectorDynamicAnomaly",
        FindingKind::LogPattern => "InspectorNewLogPattern",
    }
}

/// Labels Alertmanager routes, groups and silences on. The finding's own
/// labels come first; a name the inspector sets itself (`alertname`,
/// `severity`, `sensor`, `key`, `kind`) is kept as `finding_<name>`, and
/// characters outside `[a-zA-Z0-9_]` become `_`.
pub fn labels(alert: &Alert) -> BTreeMap<String, String> {
    const OURS: [&str; 6] = [
        "alertname",
        "severity",
        "sensor",
        "key",
        "kind",
        "incident_id",
    ];
    let finding = &alert.finding;
    let mut labels = BTreeMap::new();
    for (name, value) in &finding.labels {
        let mut name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            name.insert(0, '_');
        }
        if OURS.contains(&name.as_str()) || name.starts_with("__") {
            name = format!("finding_{}", name.trim_start_matches('_'));
        }
        labels.insert(name, value.clone());
    }
    labels.insert("alertname".into(), alert_name(finding.kind()).into());
    labels.insert("severity".into(), finding.severity.as_str().into());
    labels.insert("sensor".into(), finding.sensor().into());
    labels.insert("kind".into(), finding.kind().as_str().into());
    labels.insert("key".into(), finding.key.clone());
    // A route can `group_by: [incident_id]`: one notification per story.
    if let Some(incident) = &alert.incident_id {
        labels.insert("incident_id".into(), incident.clone());
    }
    labels
}

/// What a person reads: the sentence, and each number on its own.
pub fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    let f = &alert.finding;
    let mut annotations = BTreeMap::new();
    let mut details = vec![f.description.clone()];
    let mut put = |name: &str, label: &str, value: Option<String>| {
        if let Some(value) = value {
            details.push(format!("{label}: {value}"));
            annotations.insert(name.to_string(), value);
        }
    };
    let number = |v: f64| Some(format!("{v:.4}"));
    match &f.detail {
        FindingDetail::TrendBreach(d) => {
            put("value", "value", number(d.current_value));
            put("threshold", "threshold", number(d.threshold));
            put("slope_per_hour", "slope per hour", number(d.slope_per_hour));
            put(
                "hours_to_breach",
                "hours to breach",
                d.predicted_hours_to_breach.and_then(number),
            );
            put("r_squared", "R²", number(d.r_squared));
            put("confidence", "confidence", Some(d.confidence.to_string()));
        }
        FindingDetail::DynamicAnomaly(d) => {
            put("value", "value", number(d.current_value));
            put("expected", "expected", number(d.expected_mean));
            put("expected_sigma", "σ", number(d.expected_std));
            put(
                "deviation_sigma",
                "deviation (σ)",
                number(d.deviation_sigma),
            );
        }
        FindingDetail::LogPattern(d) => {
            put("template", "template", Some(d.template.clone()));
            put("example", "example", Some(d.example.clone()));
        }
    }
    put("source", "source", Some(f.source.clone()));
    put("finding_id", "finding", Some(f.id.clone()));
    annotations.insert("summary".into(), f.description.clone());
    annotations.insert("description".into(), details.join("\n"));
    annotations
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The body of `POST /api/v2/alerts` for `alerts` as of `now`.
pub fn payload(
    alerts: &[Alert],
    now: DateTime<Utc>,
    resend: Duration,
    generator_url: &str,
) -> Value {
    let ahead = chrono::Duration::from_std(resend).unwrap_or(chrono::Duration::minutes(1))
        * ENDS_AT_RESENDS;
    Value::Array(
        alerts
            .iter()
            .filter(|alert| !alert.shadow)
            .map(|alert| {
                json!({
                    "labels": labels(alert),
                    "annotations": annotations(alert),
                    "startsAt": rfc3339(alert.starts_at),
                    "endsAt": rfc3339(alert.ends_at().unwrap_or(now + ahead)),
                    "generatorURL": generator_url,
                })
            })
            .collect(),
    )
}

/// Why one push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("POST {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("POST {url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// Pushes alerts to the configured Alertmanagers and keeps per-target
/// delivery figures for the report.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: AlertmanagerConfig,
    resend: Duration,
    generator_url: String,
    client: reqwest::Client,
    delivery: Arc<Mutex<BTreeMap<String, DeliveryStatus>>>,
    metrics: AggregatorMetrics,
}

impl Notifier {
    pub fn new(
        config: AlertmanagerConfig,
        resend: Duration,
        generator_url: String,
        metrics: AggregatorMetrics,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(config.timeout).build()?;
        Ok(Notifier {
            config,
            resend,
            generator_url,
            client,
            delivery: Arc::default(),
            metrics,
        })
    }

    pub fn is_configured(&self) -> bool {
        !self.config.urls.is_empty()
    }

    pub fn resend_interval(&self) -> Duration {
        self.resend
    }

    /// Sends `alerts` (shadow ones left out) to every Alertmanager at once,
    /// each with retries (exponential backoff with jitter) inside the
    /// configured timeout. Returns the failures.
    pub async fn push(&self, alerts: &[Alert], now: DateTime<Utc>) -> Vec<PushError> {
        let body = payload(alerts, now, self.resend, &self.generator_url);
        if body.as_array().is_none_or(Vec::is_empty) {
            return Vec::new();
        }
        let pushes = self.config.urls.iter().map(|base| {
            let body = &body;
            async move {
                let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
                // What errors, the report and metric labels show.
                let shown = inspector_domain::redact_url(&url);
                let send = || async {
                    let response = self
                        .client
                        .post(&url)
                        .json(body)
                        .send()
                        .await
                        .map_err(|source| PushError::Http {
                            url: shown.clone(),
                            source: source.without_url(),
                        })?;
                    let status = response.status();
                    if status.is_success() {
                        return Ok(());
                    }
                    let body = response.text().await.unwrap_or_default();
                    Err(PushError::Status {
                        url: shown.clone(),
                        status,
                        body: body.chars().take(200).collect(),
                    })
                };
                let retried = send
                    .retry(
                        ExponentialBuilder::default()
                            .with_min_delay(Duration::from_millis(100))
                            .with_max_delay(Duration::from_secs(2))
                            .with_max_times(4)
                            .with_jitter(),
                    )
                    // A 4xx will not get better by sending it again.
                    .when(|e| !matches!(e, PushError::Status { status, .. } if status.is_client_error()));
                let result = match tokio::time::timeout(self.config.timeout, retried).await {
                    Ok(result) => result,
                    Err(_) => Err(PushError::Timeout {
                        url: shown.clone(),
                        timeout: self.config.timeout,
                    }),
                };
                (inspector_domain::redact_url(base), result)
            }
        });
        let results = futures::future::join_all(pushes).await;
        let mut failures = Vec::new();
        let mut delivery = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        for (target, result) in results {
            let status = delivery.entry(target.clone()).or_insert(DeliveryStatus {
                target: target.clone(),
                attempts: 0,
                failures: 0,
                last_error: None,
            });
            status.attempts += 1;
            self.metrics.alert_push(&target, result.is_ok());
            if let Err(error) = result {
                status.failures += 1;
                status.last_error = Some(inspector_runtime::error_chain(&error));
                failures.push(error);
            }
        }
        failures
    }

    /// Delivery figures since the last call, one per Alertmanager.
    pub fn take_delivery(&self) -> Vec<DeliveryStatus> {
        let mut delivery = self.delivery.lock().unwrap_or_else(|p| p.into_inner());
        let taken: Vec<DeliveryStatus> = std::mem::take(&mut *delivery).into_values().collect();
        taken
    }
}

#[cfg(test)]
mod tests {
    use inspector_domain::AlertStatus;

    use super::*;

    fn alert(status: AlertStatus, shadow: bool) -> Alert {
        let at = DateTime::from_timestamp(1_795_680_000, 0).unwrap();
        let mut finding =
            inspector_domain::fixtures::anomaly("http_requests_per_second", "b-0", at);
        finding.labels = BTreeMap::from([
            ("service".to_string(), "checkout".to_string()),
            ("severity".to_string(), "clash".to_string()),
            ("k8s.pod".to_string(), "p-1".to_string()),
        ]);
        finding.shadow = shadow;
        if let FindingDetail::DynamicAnomaly(d) = &mut finding.detail {
            d.expected_mean = 175.0;
            d.deviation_sigma = 5.1;
        }
        Alert {
            key: finding.dedup_key(),
            status,
            starts_at: at,
            last_seen_at: at,
            finding,
            shadow,
            incident_id: None,
        }
    }

    #[test]
    fn labels_are_routable_and_never_clash() {
        let labels = labels(&alert(AlertStatus::Firing, false));
        assert_eq!(labels["alertname"], "InspectorDynamicAnomaly");
        assert_eq!(labels["severity"], "critical");
        assert_eq!(labels["finding_severity"], "clash");
        assert_eq!(labels["k8s_pod"], "p-1");
        assert_eq!(labels["service"], "checkout");
        assert_eq!(labels["sensor"], "baseline-detector");
        assert!(!labels.contains_key("incident_id"));
        let mut grouped = alert(AlertStatus::Firing, false);
        grouped.incident_id = Some("inc-1".into());
        grouped
            .finding
            .labels
            .insert("incident_id".into(), "spoof".into());
        let labels = super::labels(&grouped);
        assert_eq!(labels["incident_id"], "inc-1");
        assert_eq!(labels["finding_incident_id"], "spoof");
    }

    #[test]
    fn firing_alerts_end_ahead_and_resolved_ones_when_they_did() {
        let now = DateTime::from_timestamp(1_795_680_060, 0).unwrap();
        let ended = DateTime::from_timestamp(1_795_680_030, 0).unwrap();
        let body = payload(
            &[
                alert(AlertStatus::Firing, false),
                alert(AlertStatus::Resolved { ends_at: ended }, false),
                alert(AlertStatus::Firing, true),
            ],
            now,
            Duration::from_secs(60),
            "http://aggregator:9100/v1/report/latest",
        );
        let sent = body.as_array().unwrap();
        assert_eq!(sent.len(), 2, "shadow alerts are never sent");
        assert_eq!(sent[0]["endsAt"], "2026-11-26T08:05:00.000Z");
        assert_eq!(sent[1]["endsAt"], "2026-11-26T08:00:30.000Z");
        assert_eq!(sent[0]["startsAt"], "2026-11-26T08:00:00.000Z");
        assert_eq!(sent[0]["annotations"]["expected"], "175.0000");
        assert_eq!(sent[0]["annotations"]["deviation_sigma"], "5.1000");
        assert!(
            sent[0]["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("expected: 175.0000")
        );
    }
}
