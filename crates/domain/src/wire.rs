//! Conversions between the domain types and the protobuf wire types, and
//! decoding of raw message bytes with precise errors.

use chrono::{DateTime, Utc};
use inspector_proto::v1 as pb;
use inspector_proto::{Message, Timestamp};

use crate::{
    Alert, AlertStatus, Confidence, DeliveryStatus, Finding, FindingKind, InspectionReport,
    SensorError, SensorRun, SensorStatus, Severity,
};

/// Why bytes received from the bus are not a valid message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a valid protobuf {message}: {source}")]
    Decode {
        message: &'static str,
        #[source]
        source: inspector_proto::prost::DecodeError,
    },
    #[error("invalid {message}.{field}: {problem}")]
    Invalid {
        message: &'static str,
        field: &'static str,
        problem: String,
    },
}

fn invalid(message: &'static str, field: &'static str, problem: impl Into<String>) -> WireError {
    WireError::Invalid {
        message,
        field,
        problem: problem.into(),
    }
}

fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn from_timestamp(
    ts: Option<Timestamp>,
    message: &'static str,
    field: &'static str,
) -> Result<DateTime<Utc>, WireError> {
    let ts = ts.ok_or_else(|| invalid(message, field, "missing"))?;
    u32::try_from(ts.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(ts.seconds, nanos))
        .ok_or_else(|| invalid(message, field, format!("out of range: {ts:?}")))
}

fn optional_timestamp(
    ts: Option<Timestamp>,
    message: &'static str,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, WireError> {
    ts.map(|ts| from_timestamp(Some(ts), message, field))
        .transpose()
}

impl From<FindingKind> for pb::FindingKind {
    fn from(kind: FindingKind) -> Self {
        match kind {
            FindingKind::DynamicAnomaly => pb::FindingKind::DynamicAnomaly,
            FindingKind::LogPattern => pb::FindingKind::LogPattern,
            FindingKind::TrendBreach => pb::FindingKind::TrendBreach,
        }
    }
}

fn kind_from_wire(value: i32, message: &'static str) -> Result<FindingKind, WireError> {
    match pb::FindingKind::try_from(value) {
        Ok(pb::FindingKind::DynamicAnomaly) => Ok(FindingKind::DynamicAnomaly),
        Ok(pb::FindingKind::LogPattern) => Ok(FindingKind::LogPattern),
        Ok(pb::FindingKind::TrendBreach) => Ok(FindingKind::TrendBreach),
        _ => Err(invalid(
            message,
            "kind",
            format!("unknown finding kind {value}"),
        )),
    }
}

impl From<Severity> for pb::Severity {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::Info => pb::Severity::Info,
            Severity::Warning => pb::Severity::Warning,
            Severity::Critical => pb::Severity::Critical,
        }
    }
}

fn severity_from_wire(value: i32) -> Result<Severity, WireError> {
    match pb::Severity::try_from(value) {
        Ok(pb::Severity::Info) => Ok(Severity::Info),
        Ok(pb::Severity::Warning) => Ok(Severity::Warning),
        Ok(pb::Severity::Critical) => Ok(Severity::Critical),
        _ => Err(invalid(
            "Finding",
            "severity",
            format!("unknown severity {value}"),
        )),
    }
}

fn confidence_to_wire(confidence: Option<Confidence>) -> pb::Confidence {
    match confidence {
        None => pb::Confidence::Unspecified,
        Some(Confidence::Low) => pb::Confidence::Low,
        Some(Confidence::Medium) => pb::Confidence::Medium,
        Some(Confidence::High) => pb::Confidence::High,
    }
}

fn confidence_from_wire(value: i32) -> Option<Confidence> {
    match pb::Confidence::try_from(value) {
        Ok(pb::Confidence::Low) => Some(Confidence::Low),
        Ok(pb::Confidence::Medium) => Some(Confidence::Medium),
        Ok(pb::Confidence::High) => Some(Confidence::High),
        _ => None,
    }
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl From<&Finding> for pb::Finding {
    fn from(f: &Finding) -> Self {
        pb::Finding {
            id: f.id.clone(),
            kind: pb::FindingKind::from(f.kind) as i32,
            key: f.key.clone(),
            labels: f
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            severity: pb::Severity::from(f.severity) as i32,
            description: f.description.clone(),
            current_value: f.current_value,
            threshold: f.threshold,
            expected_mean: f.expected_mean,
            expected_std: f.expected_std,
            deviation_sigma: f.deviation_sigma,
            template: f.template.clone().unwrap_or_default(),
            example: f.example.clone().unwrap_or_default(),
            slope_per_hour: f.slope_per_hour,
            r_squared: f.r_squared,
            confidence: confidence_to_wire(f.confidence) as i32,
            predicted_hours_to_breach: f.predicted_hours_to_breach,
            source: f.source.clone(),
            detected_at: Some(to_timestamp(f.detected_at)),
            shadow: f.shadow,
            sensor: f.sensor.clone(),
            instance: f.instance.clone(),
        }
    }
}

impl TryFrom<pb::Finding> for Finding {
    type Error = WireError;

    fn try_from(f: pb::Finding) -> Result<Self, WireError> {
        if f.id.is_empty() {
            return Err(invalid("Finding", "id", "missing"));
        }
        if f.key.is_empty() {
            return Err(invalid("Finding", "key", "missing"));
        }
        Ok(Finding {
            id: f.id,
            kind: kind_from_wire(f.kind, "Finding")?,
            key: f.key,
            labels: f.labels.into_iter().collect(),
            severity: severity_from_wire(f.severity)?,
            description: f.description,
            current_value: f.current_value,
            threshold: f.threshold,
            expected_mean: f.expected_mean,
            expected_std: f.expected_std,
            deviation_sigma: f.deviation_sigma,
            template: non_empty(f.template),
            example: non_empty(f.example),
            slope_per_hour: f.slope_per_hour,
            r_squared: f.r_squared,
            confidence: confidence_from_wire(f.confidence),
            predicted_hours_to_breach: f.predicted_hours_to_breach,
            source: f.source,
            detected_at: from_timestamp(f.detected_at, "Finding", "detected_at")?,
            shadow: f.shadow,
            sensor: f.sensor,
            instance: f.instance,
        })
    }
}

impl From<&SensorError> for pb::SensorError {
    fn from(e: &SensorError) -> Self {
        pb::SensorError {
            subject: e.subject.clone(),
            message: e.message.clone(),
        }
    }
}

impl From<pb::SensorError> for SensorError {
    fn from(e: pb::SensorError) -> Self {
        SensorError {
            subject: e.subject,
            message: e.message,
        }
    }
}

impl From<&SensorRun> for pb::SensorRun {
    fn from(r: &SensorRun) -> Self {
        pb::SensorRun {
            sensor: r.sensor.clone(),
            instance: r.instance.clone(),
            started_at: Some(to_timestamp(r.started_at)),
            finished_at: Some(to_timestamp(r.finished_at)),
            findings: r.findings,
            errors: r.errors.iter().map(Into::into).collect(),
            interval_seconds: r.interval_seconds,
            shadow: r.shadow,
        }
    }
}

impl TryFrom<pb::SensorRun> for SensorRun {
    type Error = WireError;

    fn try_from(r: pb::SensorRun) -> Result<Self, WireError> {
        if r.sensor.is_empty() {
            return Err(invalid("SensorRun", "sensor", "missing"));
        }
        Ok(SensorRun {
            sensor: r.sensor,
            instance: r.instance,
            started_at: from_timestamp(r.started_at, "SensorRun", "started_at")?,
            finished_at: from_timestamp(r.finished_at, "SensorRun", "finished_at")?,
            findings: r.findings,
            errors: r.errors.into_iter().map(Into::into).collect(),
            interval_seconds: r.interval_seconds,
            shadow: r.shadow,
        })
    }
}

impl From<&SensorStatus> for pb::SensorStatus {
    fn from(s: &SensorStatus) -> Self {
        pb::SensorStatus {
            sensor: s.sensor.clone(),
            enabled: s.enabled,
            stale: s.stale,
            last_run_at: s.last_run_at.map(to_timestamp),
            instances: s.instances.clone(),
            errors: s.errors.iter().map(Into::into).collect(),
            shadow: s.shadow,
        }
    }
}

impl TryFrom<pb::SensorStatus> for SensorStatus {
    type Error = WireError;

    fn try_from(s: pb::SensorStatus) -> Result<Self, WireError> {
        Ok(SensorStatus {
            sensor: s.sensor,
            enabled: s.enabled,
            stale: s.stale,
            last_run_at: optional_timestamp(s.last_run_at, "SensorStatus", "last_run_at")?,
            instances: s.instances,
            errors: s.errors.into_iter().map(Into::into).collect(),
            shadow: s.shadow,
        })
    }
}

impl From<&InspectionReport> for pb::InspectionReport {
    fn from(r: &InspectionReport) -> Self {
        pb::InspectionReport {
            window_start: Some(to_timestamp(r.window_start)),
            window_end: Some(to_timestamp(r.window_end)),
            findings: r.findings.iter().map(Into::into).collect(),
            counts: r
                .counts
                .iter()
                .map(|(kind, count)| pb::KindCount {
                    kind: pb::FindingKind::from(*kind) as i32,
                    count: *count,
                })
                .collect(),
            duplicates_suppressed: r.duplicates_suppressed,
            sensors: r.sensors.iter().map(Into::into).collect(),
            shadow: r.shadow,
            malformed_messages: r.malformed_messages,
            dedup_backend: r.dedup_backend.clone(),
            dedup_degraded: r.dedup_degraded,
            alerts_published: r.alerts_published,
            aggregator_instance: r.aggregator_instance.clone(),
            alerts: r.alerts.iter().map(Into::into).collect(),
            alert_delivery: r.alert_delivery.iter().map(Into::into).collect(),
        }
    }
}

impl From<&Alert> for pb::Alert {
    fn from(a: &Alert) -> Self {
        pb::Alert {
            key: a.key.clone(),
            status: match a.status {
                AlertStatus::Firing => pb::AlertStatus::Firing,
                AlertStatus::Resolved { .. } => pb::AlertStatus::Resolved,
            } as i32,
            starts_at: Some(to_timestamp(a.starts_at)),
            ends_at: a.ends_at().map(to_timestamp),
            last_seen_at: Some(to_timestamp(a.last_seen_at)),
            finding: Some((&a.finding).into()),
            shadow: a.shadow,
        }
    }
}

impl TryFrom<pb::Alert> for Alert {
    type Error = WireError;

    fn try_from(a: pb::Alert) -> Result<Self, WireError> {
        let status = match pb::AlertStatus::try_from(a.status) {
            Ok(pb::AlertStatus::Firing) => AlertStatus::Firing,
            Ok(pb::AlertStatus::Resolved) => AlertStatus::Resolved {
                ends_at: from_timestamp(a.ends_at, "Alert", "ends_at")?,
            },
            _ => {
                return Err(invalid(
                    "Alert",
                    "status",
                    format!("unknown value {}", a.status),
                ));
            }
        };
        if a.key.is_empty() {
            return Err(invalid("Alert", "key", "empty"));
        }
        let finding = a
            .finding
            .ok_or_else(|| invalid("Alert", "finding", "missing"))?;
        Ok(Alert {
            key: a.key,
            status,
            starts_at: from_timestamp(a.starts_at, "Alert", "starts_at")?,
            last_seen_at: from_timestamp(a.last_seen_at, "Alert", "last_seen_at")?,
            finding: Finding::try_from(finding)?,
            shadow: a.shadow,
        })
    }
}

impl From<&DeliveryStatus> for pb::DeliveryStatus {
    fn from(d: &DeliveryStatus) -> Self {
        pb::DeliveryStatus {
            target: d.target.clone(),
            attempts: d.attempts,
            failures: d.failures,
            last_error: d.last_error.clone().unwrap_or_default(),
        }
    }
}

impl From<pb::DeliveryStatus> for DeliveryStatus {
    fn from(d: pb::DeliveryStatus) -> Self {
        DeliveryStatus {
            target: d.target,
            attempts: d.attempts,
            failures: d.failures,
            last_error: non_empty(d.last_error),
        }
    }
}

impl TryFrom<pb::InspectionReport> for InspectionReport {
    type Error = WireError;

    fn try_from(r: pb::InspectionReport) -> Result<Self, WireError> {
        let findings = r
            .findings
            .into_iter()
            .map(Finding::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = InspectionReport::count_by_kind(&[]);
        for count in r.counts {
            counts.insert(kind_from_wire(count.kind, "KindCount")?, count.count);
        }
        Ok(InspectionReport {
            window_start: from_timestamp(r.window_start, "InspectionReport", "window_start")?,
            window_end: from_timestamp(r.window_end, "InspectionReport", "window_end")?,
            findings,
            counts,
            duplicates_suppressed: r.duplicates_suppressed,
            sensors: r
                .sensors
                .into_iter()
                .map(SensorStatus::try_from)
                .collect::<Result<_, _>>()?,
            shadow: r.shadow,
            malformed_messages: r.malformed_messages,
            dedup_backend: r.dedup_backend,
            dedup_degraded: r.dedup_degraded,
            alerts_published: r.alerts_published,
            aggregator_instance: r.aggregator_instance,
            alerts: r
                .alerts
                .into_iter()
                .map(Alert::try_from)
                .collect::<Result<_, _>>()?,
            alert_delivery: r.alert_delivery.into_iter().map(Into::into).collect(),
        })
    }
}

/// Encode and decode a domain type as its protobuf wire message.
pub trait WireMessage: Sized {
    /// Protobuf bytes of this value.
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes and validates protobuf bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError>;
}

macro_rules! wire_message {
    ($domain:ty, $wire:ty, $name:literal) => {
        impl WireMessage for $domain {
            fn to_bytes(&self) -> Vec<u8> {
                <$wire>::from(self).encode_to_vec()
            }

            fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
                let wire = <$wire>::decode(bytes).map_err(|source| WireError::Decode {
                    message: $name,
                    source,
                })?;
                <$domain>::try_from(wire)
            }
        }
    };
}

wire_message!(Finding, pb::Finding, "Finding");
wire_message!(SensorRun, pb::SensorRun, "SensorRun");
wire_message!(InspectionReport, pb::InspectionReport, "InspectionReport");
wire_message!(Alert, pb::Alert, "Alert");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::sample_finding;

    #[test]
    fn finding_round_trips() {
        let finding = sample_finding();
        let decoded = Finding::from_bytes(&finding.to_bytes()).unwrap();
        assert_eq!(decoded, finding);
    }

    #[test]
    fn report_round_trips() {
        let finding = sample_finding();
        let report = InspectionReport {
            window_start: finding.detected_at,
            window_end: finding.detected_at + chrono::Duration::seconds(60),
            counts: InspectionReport::count_by_kind(std::slice::from_ref(&finding)),
            findings: vec![finding.clone()],
            duplicates_suppressed: 2,
            sensors: vec![SensorStatus {
                sensor: "trend-predictor".into(),
                enabled: true,
                stale: false,
                last_run_at: Some(finding.detected_at),
                instances: vec!["pod-0".into()],
                errors: vec![SensorError {
                    subject: "cpu".into(),
                    message: "timeout".into(),
                }],
                shadow: false,
            }],
            shadow: true,
            malformed_messages: 1,
            dedup_backend: "redis".into(),
            dedup_degraded: false,
            alerts_published: 0,
            aggregator_instance: "agg-0".into(),
            alerts: vec![
                Alert {
                    key: finding.dedup_key(),
                    status: AlertStatus::Firing,
                    starts_at: finding.detected_at,
                    last_seen_at: finding.detected_at,
                    finding: finding.clone(),
                    shadow: false,
                },
                Alert {
                    key: "other".into(),
                    status: AlertStatus::Resolved {
                        ends_at: finding.detected_at + chrono::Duration::seconds(30),
                    },
                    starts_at: finding.detected_at,
                    last_seen_at: finding.detected_at,
                    finding: finding.clone(),
                    shadow: true,
                },
            ],
            alert_delivery: vec![DeliveryStatus {
                target: "http://am:9093".into(),
                attempts: 3,
                failures: 1,
                last_error: Some("connection refused".into()),
            }],
        };
        assert_eq!(
            InspectionReport::from_bytes(&report.to_bytes()).unwrap(),
            report
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = Finding::from_bytes(b"\xff\xff\xff not protobuf").unwrap_err();
        assert!(matches!(err, WireError::Decode { .. }), "{err}");
    }

    #[test]
    fn empty_message_names_the_missing_field() {
        let err = Finding::from_bytes(&[]).unwrap_err();
        assert_eq!(err.to_string(), "invalid Finding.id: missing");
        let err = SensorRun::from_bytes(&[]).unwrap_err();
        assert_eq!(err.to_string(), "invalid SensorRun.sensor: missing");
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let mut wire = pb::Finding::from(&sample_finding());
        wire.kind = 42;
        let err = Finding::from_bytes(&wire.encode_to_vec()).unwrap_err();
        assert!(err.to_string().contains("unknown finding kind 42"), "{err}");
    }
}
