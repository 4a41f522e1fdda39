//! The aggregator's Prometheus metrics: what an operator alerts on to watch
//! the inspector itself (stale sensors, degraded dedup, report age, intake
//! backlog), next to the event counters. Label values that are known up
//! front (sensors, kinds, severities) start at zero, so `rate()` and
//! absence alerts work from the first scrape.

use std::sync::atomic::AtomicU64;

use inspector_bus::ConsumerState;
use inspector_domain::{Finding, FindingKind, InspectionReport, Severity};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::owners::{Outcome, OutcomeLabels};

/// Label naming an aggregator event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

/// Every event the aggregator counts (initialised to zero).
pub const EVENTS: [&str; 12] = [
    "finding_new",
    "duplicate",
    "malformed",
    "run",
    "alert",
    "alert_error",
    "alert_store_error",
    "report_store_error",
    "report",
    "report_error",
    "consumer_error",
    "ack_error",
];

/// A finding's kind and severity.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub kind: &'static str,
    pub severity: &'static str,
}

/// One push target (an Alertmanager URL) and how the push went.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    pub target: String,
    pub result: &'static str,
}

/// One sensor.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SensorLabels {
    pub sensor: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The aggregator's metrics (`inspector_aggregator_*`); clone freely.
#[derive(Debug, Clone, Default)]
pub struct AggregatorMetrics {
    pub events: Family<EventLabels, Counter>,
    /// New (not deduplicated) findings by kind and severity.
    pub findings: Family<FindingLabels, Counter>,
    /// 1 while a sensor is stale (no run summary within two intervals).
    pub sensor_stale: Family<SensorLabels, Gauge>,
    /// When a sensor's last run summary arrived (Unix seconds; 0: never).
    pub sensor_last_run: Family<SensorLabels, FloatGauge>,
    /// 1 while deduplication runs in process because Redis failed.
    pub dedup_degraded: Gauge,
    /// When the last report was assembled (Unix seconds).
    pub last_report: FloatGauge,
    /// The configured report interval, so alerts can say "3 intervals".
    pub report_interval: FloatGauge,
    /// Intake messages not yet delivered to the aggregator.
    pub consumer_pending: Gauge,
    /// Delivered to the aggregator, not yet acknowledged.
    pub consumer_ack_pending: Gauge,
    /// Redelivered and not yet acknowledged.
    pub consumer_redelivered: Gauge,
    /// Alerts firing now (shadow ones included).
    pub alerts_firing: Gauge,
    /// Incidents open now.
    pub incidents_open: Gauge,
    /// Sightings that found `incidents.max_open` open and stood alone.
    pub incidents_refused: Gauge,
    /// Pushes to each Alertmanager, by result (`ok`, `error`).
    pub alert_pushes: Family<PushLabels, Counter>,
    /// Pod owner lookups through the Kubernetes API, by outcome.
    pub owner_lookups: Family<OutcomeLabels, Counter>,
}

impl AggregatorMetrics {
    /// Registers under `inspector_aggregator_*`, with `sensors` (the enabled
    /// ones of the config) initialised.
    pub fn register<'a>(
        registry: &mut Registry,
        sensors: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let metrics = AggregatorMetrics::default();
        let sub = registry.sub_registry_with_prefix("inspector_aggregator");
        sub.register(
            "events",
            "Aggregator events: finding_new, duplicate, malformed, run, alert, alert_error, report, report_error, consumer_error, ack_error, incident_opened, incident_updated, incident_resolved, incident_merged, incident_error",
            metrics.events.clone(),
        );
        sub.register(
            "owner_lookups",
            "Pod owner lookups through the Kubernetes API, by outcome: resolved, not_found, forbidden, error, skipped (not asked: the API failed within incidents.owners.retry_after)",
            metrics.owner_lookups.clone(),
        );
        for outcome in Outcome::ALL {
            let _ = metrics.owner_lookups.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        sub.register(
            "incidents_open",
            "Incidents open now",
            metrics.incidents_open.clone(),
        );
        sub.register(
            "incidents_refused",
            "Sightings since start that found incidents.max_open incidents open and stood alone",
            metrics.incidents_refused.clone(),
        );
        sub.register(
            "findings",
            "New (not deduplicated) findings, by kind and severity",
            metrics.findings.clone(),
        );
        sub.register(
            "sensor_stale",
            "1 while a sensor is stale: no run summary arrived within two of its intervals",
            metrics.sensor_stale.clone(),
        );
        sub.register(
            "sensor_last_run_timestamp_seconds",
            "When the sensor's last run summary arrived (0: never)",
            metrics.sensor_last_run.clone(),
        );
        sub.register(
            "dedup_degraded",
            "1 while deduplication runs in process because Redis failed",
            metrics.dedup_degraded.clone(),
        );
        sub.register(
            "last_report_timestamp_seconds",
            "When the last inspection report was assembled",
            metrics.last_report.clone(),
        );
        sub.register(
            "report_interval_seconds",
            "The configured report interval",
            metrics.report_interval.clone(),
        );
        sub.register(
            "consumer_pending_messages",
            "Intake messages in the stream not yet delivered to the aggregator",
            metrics.consumer_pending.clone(),
        );
        sub.register(
            "consumer_ack_pending_messages",
            "Intake messages delivered and not yet acknowledged",
            metrics.consumer_ack_pending.clone(),
        );
        sub.register(
            "consumer_redelivered_messages",
            "Intake messages redelivered and not yet acknowledged",
            metrics.consumer_redelivered.clone(),
        );
        sub.register(
            "alerts_firing",
            "Alerts firing now",
            metrics.alerts_firing.clone(),
        );
        sub.register(
            "alert_pushes",
            "Pushes of the active alerts to each Alertmanager, by result",
            metrics.alert_pushes.clone(),
        );
        for event in EVENTS {
            let _ = metrics.events.get_or_create(&EventLabels { event });
        }
        for kind in FindingKind::ALL {
            for severity in Severity::ALL {
                let _ = metrics.findings.get_or_create(&FindingLabels {
                    kind: kind.as_str(),
                    severity: severity.as_str(),
                });
            }
        }
        for sensor in sensors {
            let labels = SensorLabels {
                sensor: sensor.to_string(),
            };
            let _ = metrics.sensor_stale.get_or_create(&labels);
            let _ = metrics.sensor_last_run.get_or_create(&labels);
        }
        metrics
    }

    /// Starts the push counters of `targets` at zero.
    pub fn init_push_targets<'a>(&self, targets: impl IntoIterator<Item = &'a String>) {
        for target in targets {
            for result in ["ok", "error"] {
                let _ = self.alert_pushes.get_or_create(&PushLabels {
                    target: inspector_domain::redact_url(target),
                    result,
                });
            }
        }
    }

    pub fn alert_push(&self, target: &str, ok: bool) {
        self.alert_pushes
            .get_or_create(&PushLabels {
                target: target.to_string(),
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    pub fn count(&self, event: &'static str) {
        self.events.get_or_create(&EventLabels { event }).inc();
    }

    /// Counts incident transitions by kind.
    pub fn count_incident_events(&self, events: &[crate::incidents::IncidentEvent]) {
        use crate::incidents::Transition;
        for event in events {
            self.count(match event.transition {
                Transition::Opened => "incident_opened",
                Transition::Updated => "incident_updated",
                Transition::Resolved => "incident_resolved",
                Transition::Merged => "incident_merged",
            });
        }
    }

    pub fn new_finding(&self, finding: &Finding) {
        self.count("finding_new");
        self.findings
            .get_or_create(&FindingLabels {
                kind: finding.kind().as_str(),
                severity: finding.severity.as_str(),
            })
            .inc();
    }

    /// Sets the gauges a report describes.
    pub fn observe_report(&self, report: &InspectionReport) {
        self.last_report
            .set(report.window_end.timestamp_millis() as f64 / 1000.0);
        self.dedup_degraded.set(i64::from(report.dedup_degraded));
        self.alerts_firing
            .set(report.alerts.iter().filter(|a| a.is_firing()).count() as i64);
        for status in &report.sensors {
            let labels = SensorLabels {
                sensor: status.sensor.clone(),
            };
            self.sensor_stale
                .get_or_create(&labels)
                .set(i64::from(status.stale && status.enabled));
            if let Some(at) = status.last_run_at {
                self.sensor_last_run
                    .get_or_create(&labels)
                    .set(at.timestamp_millis() as f64 / 1000.0);
            }
        }
    }

    pub fn observe_consumer(&self, state: ConsumerState) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.consumer_pending.set(clamp(state.pending));
        self.consumer_ack_pending.set(clamp(state.ack_pending));
        self.consumer_redelivered.set(clamp(state.redelivered));
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use inspector_domain::SensorStatus;
    use inspector_runtime::OpsState;
    use inspector_runtime::ops::openmetrics_to_text;

    use super::*;

    fn report(stale: bool, degraded: bool) -> InspectionReport {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
        InspectionReport {
            window_start: at - chrono::Duration::minutes(1),
            window_end: at,
            findings: vec![],
            counts: InspectionReport::count_by_kind(&[]),
            duplicates_suppressed: 0,
            sensors: vec![SensorStatus {
                sensor: "trend-predictor".into(),
                enabled: true,
                stale,
                last_run_at: Some(at - chrono::Duration::seconds(30)),
                instances: vec!["t-0".into()],
                errors: vec![],
                shadow: false,
                warming_up: 0,
            }],
            shadow: false,
            malformed_messages: 0,
            dedup_backend: "redis".into(),
            dedup_degraded: degraded,
            alerts_published: 0,
            aggregator_instance: "a-0".into(),
            alerts: vec![],
            alert_delivery: vec![],
            findings_omitted: 0,
            alerts_omitted: 0,
            incidents: vec![],
        }
    }

    #[test]
    fn gauges_follow_the_report_and_lint_clean() {
        let mut registry = Registry::default();
        let metrics = AggregatorMetrics::register(
            &mut registry,
            ["trend-predictor", "baseline-detector", "log-pattern"],
        );
        metrics.observe_report(&report(true, true));
        metrics.observe_consumer(ConsumerState {
            pending: 7,
            ack_pending: 3,
            redelivered: 1,
            delivered_sequence: 11,
        });
        let ops = OpsState::new(registry);
        let text = openmetrics_to_text(&ops.encode_metrics());
        for expected in [
            "inspector_aggregator_sensor_stale{sensor=\"trend-predictor\"} 1",
            "inspector_aggregator_sensor_stale{sensor=\"log-pattern\"} 0",
            "inspector_aggregator_dedup_degraded 1",
            "inspector_aggregator_consumer_pending_messages 7",
            "inspector_aggregator_last_report_timestamp_seconds 1795680000",
            "inspector_aggregator_findings_total{kind=\"log_pattern\",severity=\"critical\"} 0",
            "inspector_aggregator_events_total{event=\"alert_error\"} 0",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
        inspector_test_harness::promtool_check_metrics(&text).unwrap();

        metrics.observe_report(&report(false, false));
        let text = openmetrics_to_text(&ops.encode_metrics());
        assert!(text.contains("inspector_aggregator_sensor_stale{sensor=\"trend-predictor\"} 0"));
        assert!(text.contains("inspector_aggregator_dedup_degraded 0"));
    }
}
