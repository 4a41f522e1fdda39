//! Conversions between the domain types and the protobuf wire types, and
//! decoding of raw message bytes with precise errors.

use chrono::{DateTime, Utc};
use inspector_proto::v1 as pb;
use inspector_proto::{Message, Timestamp};

use crate::context::{AnomalyContext, ContextItem, ContextQuery, ContextReply};
use crate::scope::{Resolution, Scope, ScopeMatch, WorkloadKind};
use crate::{
    Alert, AlertStatus, AnomalyDetail, BandPoint, Confidence, DeliveryStatus, Finding,
    FindingDetail, FindingKind, Incident, IncidentMember, IncidentState, InspectionReport,
    LineEvidence, LogPatternDetail, MAX_EVIDENCE_POINTS, Observation, SensorError, SensorRun,
    SensorStatus, SeriesPoint, Severity, TrendDetail,
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

/// Most labels a finding may carry.
pub const MAX_LABELS: usize = 64;
/// Longest description, source, template or example kept (longer: cut).
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest label name or value kept (longer: cut).
pub const MAX_LABEL_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes on a character boundary, marked `…`.
fn cap(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The longest pass interval a run summary may claim; staleness arithmetic
/// stays far from overflow below it.
pub const MAX_RUN_INTERVAL_SECONDS: u64 = 7 * 24 * 3600;

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
        use pb::finding::Detail;
        let mut wire = pb::Finding {
            id: f.id.clone(),
            kind: pb::FindingKind::from(f.kind()) as i32,
            key: f.key.clone(),
            labels: f
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            severity: pb::Severity::from(f.severity) as i32,
            description: f.description.clone(),
            source: f.source.clone(),
            detected_at: Some(to_timestamp(f.detected_at)),
            shadow: f.shadow,
            sensor: f.sensor().to_string(),
            instance: f.instance.clone(),
            ..Default::default()
        };
        // The flat fields too, for readers built before the oneof.
        wire.detail = Some(match &f.detail {
            FindingDetail::TrendBreach(d) => {
                wire.current_value = Some(d.current_value);
                wire.threshold = Some(d.threshold);
                wire.slope_per_hour = Some(d.slope_per_hour);
                wire.r_squared = Some(d.r_squared);
                wire.confidence = confidence_to_wire(Some(d.confidence)) as i32;
                wire.predicted_hours_to_breach = d.predicted_hours_to_breach;
                Detail::Trend(pb::TrendDetail {
                    current_value: d.current_value,
                    threshold: d.threshold,
                    slope_per_hour: d.slope_per_hour,
                    r_squared: d.r_squared,
                    confidence: confidence_to_wire(Some(d.confidence)) as i32,
                    predicted_hours_to_breach: d.predicted_hours_to_breach,
                    evidence: d
                        .evidence
                        .iter()
                        .flat_map(|e| &e.points)
                        .map(|p| pb::SeriesPoint {
                            at_ms: p.at.timestamp_millis(),
                            value: p.value,
                        })
                        .collect(),
                    fitted_at_detection: d.evidence.as_ref().map(|e| e.fitted_at_detection),
                })
            }
            FindingDetail::DynamicAnomaly(d) => {
                wire.current_value = Some(d.current_value);
                wire.expected_mean = Some(d.expected_mean);
                wire.expected_std = Some(d.expected_std);
                wire.deviation_sigma = Some(d.deviation_sigma);
                Detail::DynamicAnomaly(pb::AnomalyDetail {
                    current_value: d.current_value,
                    expected_mean: d.expected_mean,
                    expected_std: d.expected_std,
                    deviation_sigma: d.deviation_sigma,
                    evidence: d
                        .evidence
                        .iter()
                        .map(|p| pb::BandPoint {
                            at_ms: p.at.timestamp_millis(),
                            value: p.value,
                            expected: p.expected,
                            std: p.std,
                        })
                        .collect(),
                })
            }
            FindingDetail::LogPattern(d) => {
                wire.template = d.template.clone();
                wire.example = d.example.clone();
                Detail::LogPattern(pb::LogPatternDetail {
                    template: d.template.clone(),
                    example: d.example.clone(),
                })
            }
        });
        wire
    }
}

/// A finite number, or the error naming the field.
fn finite(value: f64, field: &'static str) -> Result<f64, WireError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(invalid(
            "Finding",
            field,
            format!("{value} is not a finite number"),
        ))
    }
}

/// A field the flat (pre-oneof) form must have for this kind.
fn required(value: Option<f64>, field: &'static str) -> Result<f64, WireError> {
    finite(
        value.ok_or_else(|| invalid("Finding", field, "missing"))?,
        field,
    )
}

/// An evidence series' times: at most [`MAX_EVIDENCE_POINTS`], ascending,
/// each a time chrono can hold.
fn evidence_times(
    times: impl ExactSizeIterator<Item = i64>,
    field: &'static str,
) -> Result<Vec<DateTime<Utc>>, WireError> {
    if times.len() > MAX_EVIDENCE_POINTS {
        return Err(invalid(
            "Finding",
            field,
            format!("{} points, more than {MAX_EVIDENCE_POINTS}", times.len()),
        ));
    }
    let mut previous = i64::MIN;
    times
        .map(|ms| {
            if ms <= previous {
                return Err(invalid("Finding", field, "points are not in time order"));
            }
            previous = ms;
            DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| invalid("Finding", field, format!("{ms} ms is out of range")))
        })
        .collect()
}

fn line_evidence(d: &pb::TrendDetail) -> Result<Option<LineEvidence>, WireError> {
    if d.evidence.is_empty() {
        return Ok(None);
    }
    let field = "trend.evidence";
    let times = evidence_times(d.evidence.iter().map(|p| p.at_ms), field)?;
    let points = times
        .into_iter()
        .zip(&d.evidence)
        .map(|(at, p)| {
            Ok(SeriesPoint {
                at,
                value: finite(p.value, field)?,
            })
        })
        .collect::<Result<_, WireError>>()?;
    let fitted = d.fitted_at_detection.ok_or_else(|| {
        invalid(
            "Finding",
            "trend.fitted_at_detection",
            "missing with evidence",
        )
    })?;
    Ok(Some(LineEvidence {
        points,
        fitted_at_detection: finite(fitted, "trend.fitted_at_detection")?,
    }))
}

fn band_evidence(d: &pb::AnomalyDetail) -> Result<Vec<BandPoint>, WireError> {
    let field = "dynamic_anomaly.evidence";
    let times = evidence_times(d.evidence.iter().map(|p| p.at_ms), field)?;
    times
        .into_iter()
        .zip(&d.evidence)
        .map(|(at, p)| {
            Ok(BandPoint {
                at,
                value: finite(p.value, field)?,
                expected: finite(p.expected, field)?,
                std: finite(p.std, field)?,
            })
        })
        .collect()
}

fn detail_from_wire(f: &pb::Finding) -> Result<FindingDetail, WireError> {
    use pb::finding::Detail;
    let confidence = |value: i32| {
        confidence_from_wire(value).ok_or_else(|| invalid("Finding", "confidence", "missing"))
    };
    let hours = |value: Option<f64>| {
        value
            .map(|h| finite(h, "predicted_hours_to_breach"))
            .transpose()
    };
    Ok(match &f.detail {
        Some(Detail::Trend(d)) => FindingDetail::TrendBreach(TrendDetail {
            current_value: finite(d.current_value, "trend.current_value")?,
            threshold: finite(d.threshold, "trend.threshold")?,
            slope_per_hour: finite(d.slope_per_hour, "trend.slope_per_hour")?,
            r_squared: finite(d.r_squared, "trend.r_squared")?,
            confidence: confidence(d.confidence)?,
            predicted_hours_to_breach: hours(d.predicted_hours_to_breach)?,
            evidence: line_evidence(d)?,
        }),
        Some(Detail::DynamicAnomaly(d)) => FindingDetail::DynamicAnomaly(AnomalyDetail {
            current_value: finite(d.current_value, "dynamic_anomaly.current_value")?,
            expected_mean: finite(d.expected_mean, "dynamic_anomaly.expected_mean")?,
            expected_std: finite(d.expected_std, "dynamic_anomaly.expected_std")?,
            deviation_sigma: finite(d.deviation_sigma, "dynamic_anomaly.deviation_sigma")?,
            evidence: band_evidence(d)?,
        }),
        Some(Detail::LogPattern(d)) => FindingDetail::LogPattern(LogPatternDetail {
            template: d.template.clone(),
            example: d.example.clone(),
        }),
        // A writer from before the oneof: the kind and the flat fields.
        None => match kind_from_wire(f.kind, "Finding")? {
            FindingKind::TrendBreach => FindingDetail::TrendBreach(TrendDetail {
                current_value: required(f.current_value, "current_value")?,
                threshold: required(f.threshold, "threshold")?,
                slope_per_hour: required(f.slope_per_hour, "slope_per_hour")?,
                r_squared: required(f.r_squared, "r_squared")?,
                confidence: confidence(f.confidence)?,
                predicted_hours_to_breach: hours(f.predicted_hours_to_breach)?,
                evidence: None,
            }),
            FindingKind::DynamicAnomaly => FindingDetail::DynamicAnomaly(AnomalyDetail {
                current_value: required(f.current_value, "current_value")?,
                expected_mean: required(f.expected_mean, "expected_mean")?,
                expected_std: required(f.expected_std, "expected_std")?,
                deviation_sigma: required(f.deviation_sigma, "deviation_sigma")?,
                evidence: Vec::new(),
            }),
            FindingKind::LogPattern => FindingDetail::LogPattern(LogPatternDetail {
                template: f.template.clone(),
                example: f.example.clone(),
            }),
        },
    })
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
        if f.labels.len() > MAX_LABELS {
            return Err(invalid(
                "Finding",
                "labels",
                format!("{} labels, more than {MAX_LABELS}", f.labels.len()),
            ));
        }
        let mut f = f;
        f.description = cap(f.description, MAX_TEXT_BYTES);
        f.source = cap(f.source, MAX_TEXT_BYTES);
        if let Some(pb::finding::Detail::LogPattern(d)) = &mut f.detail {
            d.template = cap(std::mem::take(&mut d.template), MAX_TEXT_BYTES);
            d.example = cap(std::mem::take(&mut d.example), MAX_TEXT_BYTES);
        }
        f.template = cap(f.template, MAX_TEXT_BYTES);
        f.example = cap(f.example, MAX_TEXT_BYTES);
        f.labels = f
            .labels
            .into_iter()
            .map(|(k, v)| (cap(k, MAX_LABEL_BYTES), cap(v, MAX_LABEL_BYTES)))
            .collect();
        let detail = detail_from_wire(&f)?;
        // With the oneof set, the flat kind is redundant; if given, it must agree.
        if f.detail.is_some()
            && f.kind != pb::FindingKind::Unspecified as i32
            && kind_from_wire(f.kind, "Finding")? != detail.kind()
        {
            return Err(invalid("Finding", "kind", "contradicts the detail"));
        }
        Ok(Finding {
            id: f.id,
            observation: Observation {
                key: f.key,
                labels: f.labels.into_iter().collect(),
                severity: severity_from_wire(f.severity)?,
                description: f.description,
                source: f.source,
                detected_at: from_timestamp(f.detected_at, "Finding", "detected_at")?,
                shadow: f.shadow,
                instance: f.instance,
            },
            detail,
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
            warming_up: r.warming_up,
        }
    }
}

impl TryFrom<pb::SensorRun> for SensorRun {
    type Error = WireError;

    fn try_from(r: pb::SensorRun) -> Result<Self, WireError> {
        if r.sensor.is_empty() {
            return Err(invalid("SensorRun", "sensor", "missing"));
        }
        if r.interval_seconds > MAX_RUN_INTERVAL_SECONDS {
            return Err(invalid(
                "SensorRun",
                "interval_seconds",
                format!(
                    "{} is more than a week ({MAX_RUN_INTERVAL_SECONDS})",
                    r.interval_seconds
                ),
            ));
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
            warming_up: r.warming_up,
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
            warming_up: s.warming_up,
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
            warming_up: s.warming_up,
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
            findings_omitted: r.findings_omitted,
            alerts_omitted: r.alerts_omitted,
            incidents: r.incidents.iter().map(Into::into).collect(),
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
            incident_id: a.incident_id.clone().unwrap_or_default(),
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
            incident_id: non_empty(a.incident_id),
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
            findings_omitted: r.findings_omitted,
            alerts_omitted: r.alerts_omitted,
            incidents: r
                .incidents
                .into_iter()
                .map(Incident::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<&Scope> for pb::Scope {
    fn from(scope: &Scope) -> Self {
        match scope {
            Scope::Cluster => pb::Scope {
                level: pb::ScopeLevel::Cluster as i32,
                ..Default::default()
            },
            Scope::Namespace { namespace } => pb::Scope {
                level: pb::ScopeLevel::Namespace as i32,
                namespace: namespace.clone(),
                ..Default::default()
            },
            Scope::Workload {
                namespace,
                name,
                kind,
                resolved_by,
            } => pb::Scope {
                level: pb::ScopeLevel::Workload as i32,
                namespace: namespace.clone().unwrap_or_default(),
                workload: name.clone(),
                workload_kind: match kind {
                    WorkloadKind::Deployment => pb::WorkloadKind::Deployment,
                    WorkloadKind::StatefulSet => pb::WorkloadKind::StatefulSet,
                    WorkloadKind::DaemonSet => pb::WorkloadKind::DaemonSet,
                    WorkloadKind::Job => pb::WorkloadKind::Job,
                    WorkloadKind::CronJob => pb::WorkloadKind::CronJob,
                    WorkloadKind::Unknown => pb::WorkloadKind::Unspecified,
                } as i32,
                resolved_by: match resolved_by {
                    Resolution::Label { .. } => pb::ScopeResolution::Label,
                    Resolution::KubernetesApi => pb::ScopeResolution::KubernetesApi,
                    Resolution::PodNaming => pb::ScopeResolution::PodNaming,
                } as i32,
                resolved_label: match resolved_by {
                    Resolution::Label { label } => label.clone(),
                    _ => String::new(),
                },
            },
        }
    }
}

impl TryFrom<pb::Scope> for Scope {
    type Error = WireError;

    fn try_from(s: pb::Scope) -> Result<Self, WireError> {
        let namespace = cap(s.namespace, MAX_LABEL_BYTES);
        match pb::ScopeLevel::try_from(s.level) {
            Ok(pb::ScopeLevel::Cluster) => Ok(Scope::Cluster),
            Ok(pb::ScopeLevel::Namespace) if !namespace.is_empty() => {
                Ok(Scope::Namespace { namespace })
            }
            Ok(pb::ScopeLevel::Workload) if !s.workload.is_empty() => Ok(Scope::Workload {
                namespace: non_empty(namespace),
                name: cap(s.workload, MAX_LABEL_BYTES),
                kind: match pb::WorkloadKind::try_from(s.workload_kind) {
                    Ok(pb::WorkloadKind::Deployment) => WorkloadKind::Deployment,
                    Ok(pb::WorkloadKind::StatefulSet) => WorkloadKind::StatefulSet,
                    Ok(pb::WorkloadKind::DaemonSet) => WorkloadKind::DaemonSet,
                    Ok(pb::WorkloadKind::Job) => WorkloadKind::Job,
                    Ok(pb::WorkloadKind::CronJob) => WorkloadKind::CronJob,
                    _ => WorkloadKind::Unknown,
                },
                resolved_by: match pb::ScopeResolution::try_from(s.resolved_by) {
                    Ok(pb::ScopeResolution::KubernetesApi) => Resolution::KubernetesApi,
                    Ok(pb::ScopeResolution::PodNaming) => Resolution::PodNaming,
                    _ => Resolution::Label {
                        label: cap(s.resolved_label, MAX_LABEL_BYTES),
                    },
                },
            }),
            Ok(pb::ScopeLevel::Namespace) => Err(invalid("Scope", "namespace", "empty")),
            Ok(pb::ScopeLevel::Workload) => Err(invalid("Scope", "workload", "empty")),
            _ => Err(invalid(
                "Scope",
                "level",
                format!("unknown value {}", s.level),
            )),
        }
    }
}

impl From<&IncidentMember> for pb::IncidentMember {
    fn from(m: &IncidentMember) -> Self {
        pb::IncidentMember {
            key: m.key.clone(),
            scope: Some((&m.scope).into()),
            first_seen: Some(to_timestamp(m.first_seen)),
            last_seen: Some(to_timestamp(m.last_seen)),
            finding_ids: m.finding_ids.clone(),
            sightings: m.sightings,
            finding: Some((&m.finding).into()),
        }
    }
}

impl TryFrom<pb::IncidentMember> for IncidentMember {
    type Error = WireError;

    fn try_from(m: pb::IncidentMember) -> Result<Self, WireError> {
        Ok(IncidentMember {
            key: m.key,
            scope: Scope::try_from(m.scope.unwrap_or_default())?,
            first_seen: from_timestamp(m.first_seen, "IncidentMember", "first_seen")?,
            last_seen: from_timestamp(m.last_seen, "IncidentMember", "last_seen")?,
            finding_ids: m.finding_ids,
            sightings: m.sightings,
            finding: Finding::try_from(
                m.finding
                    .ok_or_else(|| invalid("IncidentMember", "finding", "missing"))?,
            )?,
        })
    }
}

impl From<&Incident> for pb::Incident {
    fn from(i: &Incident) -> Self {
        pb::Incident {
            id: i.id.clone(),
            state: match i.state {
                IncidentState::Open => pb::IncidentState::Open,
                IncidentState::Resolved { .. } => pb::IncidentState::Resolved,
                IncidentState::Merged { .. } => pb::IncidentState::Merged,
            } as i32,
            scope: Some((&i.scope).into()),
            title: i.title.clone(),
            severity: pb::Severity::from(i.severity) as i32,
            opened_at: Some(to_timestamp(i.opened_at)),
            first_seen: Some(to_timestamp(i.first_seen)),
            last_seen: Some(to_timestamp(i.last_seen)),
            closed_at: i.state.closed_at().map(to_timestamp),
            merged_into: match &i.state {
                IncidentState::Merged { into, .. } => into.clone(),
                _ => String::new(),
            },
            members: i.members.iter().map(Into::into).collect(),
            members_omitted: i.members_omitted,
            revision: i.revision,
        }
    }
}

impl TryFrom<pb::Incident> for Incident {
    type Error = WireError;

    fn try_from(i: pb::Incident) -> Result<Self, WireError> {
        if i.id.is_empty() {
            return Err(invalid("Incident", "id", "empty"));
        }
        let state = match pb::IncidentState::try_from(i.state) {
            Ok(pb::IncidentState::Open) => IncidentState::Open,
            Ok(pb::IncidentState::Resolved) => IncidentState::Resolved {
                at: from_timestamp(i.closed_at, "Incident", "closed_at")?,
            },
            Ok(pb::IncidentState::Merged) => IncidentState::Merged {
                at: from_timestamp(i.closed_at, "Incident", "closed_at")?,
                into: i.merged_into,
            },
            _ => {
                return Err(invalid(
                    "Incident",
                    "state",
                    format!("unknown value {}", i.state),
                ));
            }
        };
        Ok(Incident {
            id: i.id,
            state,
            scope: Scope::try_from(i.scope.unwrap_or_default())?,
            title: cap(i.title, MAX_TEXT_BYTES),
            severity: severity_from_wire(i.severity)?,
            opened_at: from_timestamp(i.opened_at, "Incident", "opened_at")?,
            first_seen: from_timestamp(i.first_seen, "Incident", "first_seen")?,
            last_seen: from_timestamp(i.last_seen, "Incident", "last_seen")?,
            members: i
                .members
                .into_iter()
                .map(IncidentMember::try_from)
                .collect::<Result<_, _>>()?,
            members_omitted: i.members_omitted,
            revision: i.revision,
        })
    }
}

/// Encode and decode a domain type as its protobuf wire message.
pub trait WireMessage: Sized {
    /// Protobuf bytes of this value.
    fn to_bytes(&self) -> Vec<u8>;
    /// Length of [`WireMessage::to_bytes`], without building the bytes.
    fn encoded_len(&self) -> usize;
    /// Decodes and validates protobuf bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError>;
}

macro_rules! wire_message {
    ($domain:ty, $wire:ty, $name:literal) => {
        impl WireMessage for $domain {
            fn to_bytes(&self) -> Vec<u8> {
                <$wire>::from(self).encode_to_vec()
            }

            fn encoded_len(&self) -> usize {
                Message::encoded_len(&<$wire>::from(self))
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
wire_message!(Incident, pb::Incident, "Incident");
wire_message!(ContextQuery, pb::ContextQuery, "ContextQuery");
wire_message!(AnomalyContext, pb::AnomalyContext, "AnomalyContext");
wire_message!(ContextReply, pb::ContextReply, "ContextReply");

impl From<&ContextReply> for pb::ContextReply {
    fn from(reply: &ContextReply) -> Self {
        pb::ContextReply {
            outcome: Some(match reply {
                ContextReply::Context(context) => {
                    pb::context_reply::Outcome::Context((&**context).into())
                }
                ContextReply::Refused(error) => pb::context_reply::Outcome::Error(error.clone()),
            }),
        }
    }
}

impl TryFrom<pb::ContextReply> for ContextReply {
    type Error = WireError;

    fn try_from(reply: pb::ContextReply) -> Result<Self, WireError> {
        match reply.outcome {
            Some(pb::context_reply::Outcome::Context(context)) => Ok(ContextReply::Context(
                Box::new(AnomalyContext::try_from(context)?),
            )),
            Some(pb::context_reply::Outcome::Error(error)) => {
                Ok(ContextReply::Refused(cap(error, MAX_TEXT_BYTES)))
            }
            None => Err(invalid("ContextReply", "outcome", "missing")),
        }
    }
}

impl From<&ContextQuery> for pb::ContextQuery {
    fn from(q: &ContextQuery) -> Self {
        pb::ContextQuery {
            namespace: q.namespace.clone().unwrap_or_default(),
            workload: q.workload.clone().unwrap_or_default(),
            at: q.at.map(to_timestamp),
            window_seconds: q.window_seconds.unwrap_or_default(),
            max_items: q.max_items.unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::ContextQuery> for ContextQuery {
    type Error = WireError;

    fn try_from(q: pb::ContextQuery) -> Result<Self, WireError> {
        Ok(ContextQuery {
            namespace: non_empty(cap(q.namespace, MAX_LABEL_BYTES)),
            workload: non_empty(cap(q.workload, MAX_LABEL_BYTES)),
            at: optional_timestamp(q.at, "ContextQuery", "at")?,
            window_seconds: (q.window_seconds > 0).then_some(q.window_seconds),
            max_items: (q.max_items > 0).then_some(q.max_items),
        })
    }
}

fn scope_match_to_wire(m: ScopeMatch) -> i32 {
    let wire = match m {
        ScopeMatch::Workload => pb::ScopeMatch::Workload,
        ScopeMatch::Namespace => pb::ScopeMatch::Namespace,
        ScopeMatch::Cluster => pb::ScopeMatch::Cluster,
    };
    wire as i32
}

impl From<&AnomalyContext> for pb::AnomalyContext {
    fn from(c: &AnomalyContext) -> Self {
        pb::AnomalyContext {
            version: c.version,
            generated_at: Some(to_timestamp(c.generated_at)),
            from: Some(to_timestamp(c.from)),
            to: Some(to_timestamp(c.to)),
            namespace: c.namespace.clone().unwrap_or_default(),
            workload: c.workload.clone().unwrap_or_default(),
            shadow: c.shadow,
            items: c
                .items
                .iter()
                .map(|item| pb::ContextItem {
                    scope_match: scope_match_to_wire(item.scope_match),
                    scope: Some((&item.scope).into()),
                    finding: Some((&item.finding).into()),
                    incident_id: item.incident_id.clone().unwrap_or_default(),
                })
                .collect(),
            total_items: c.total_items,
            incidents: c.incidents.iter().map(Into::into).collect(),
            sensor_problems: c.sensor_problems.iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::AnomalyContext> for AnomalyContext {
    type Error = WireError;

    fn try_from(c: pb::AnomalyContext) -> Result<Self, WireError> {
        let items = c
            .items
            .into_iter()
            .map(|item| {
                Ok(ContextItem {
                    scope_match: match pb::ScopeMatch::try_from(item.scope_match) {
                        Ok(pb::ScopeMatch::Workload) => ScopeMatch::Workload,
                        Ok(pb::ScopeMatch::Namespace) => ScopeMatch::Namespace,
                        _ => ScopeMatch::Cluster,
                    },
                    scope: Scope::try_from(item.scope.unwrap_or_default())?,
                    incident_id: non_empty(item.incident_id),
                    finding: Finding::try_from(
                        item.finding
                            .ok_or_else(|| invalid("ContextItem", "finding", "missing"))?,
                    )?,
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(AnomalyContext {
            version: c.version,
            generated_at: from_timestamp(c.generated_at, "AnomalyContext", "generated_at")?,
            from: from_timestamp(c.from, "AnomalyContext", "from")?,
            to: from_timestamp(c.to, "AnomalyContext", "to")?,
            namespace: non_empty(c.namespace),
            workload: non_empty(c.workload),
            shadow: c.shadow,
            items,
            total_items: c.total_items,
            incidents: c
                .incidents
                .into_iter()
                .map(Incident::try_from)
                .collect::<Result<_, _>>()?,
            sensor_problems: c
                .sensor_problems
                .into_iter()
                .map(SensorStatus::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

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
                warming_up: 4,
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
                    incident_id: Some("incident-1".into()),
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
                    incident_id: None,
                },
            ],
            alert_delivery: vec![DeliveryStatus {
                target: "http://am:9093".into(),
                attempts: 3,
                failures: 1,
                last_error: Some("connection refused".into()),
            }],
            findings_omitted: 3,
            alerts_omitted: 0,
            incidents: vec![Incident {
                id: "incident-1".into(),
                state: IncidentState::Merged {
                    at: finding.detected_at,
                    into: "incident-0".into(),
                },
                scope: Scope::Workload {
                    namespace: Some("shop".into()),
                    name: "checkout".into(),
                    kind: WorkloadKind::Deployment,
                    resolved_by: Resolution::Label {
                        label: "deployment".into(),
                    },
                },
                title: "checkout: disk rising".into(),
                severity: Severity::Warning,
                opened_at: finding.detected_at,
                first_seen: finding.detected_at,
                last_seen: finding.detected_at,
                members: vec![IncidentMember {
                    key: finding.dedup_key(),
                    scope: Scope::Namespace {
                        namespace: "shop".into(),
                    },
                    first_seen: finding.detected_at,
                    last_seen: finding.detected_at,
                    finding_ids: vec![finding.id.clone()],
                    sightings: 2,
                    finding: finding.clone(),
                }],
                members_omitted: 1,
                revision: 4,
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

    /// A writer from before the `detail` oneof sent only the flat fields:
    /// still read, as the compatibility rule says.
    #[test]
    fn a_finding_without_the_oneof_is_read_from_the_flat_fields() {
        let finding = sample_finding();
        let mut wire = pb::Finding::from(&finding);
        wire.detail = None;
        let decoded = Finding::from_bytes(&wire.encode_to_vec()).unwrap();
        assert_eq!(decoded, finding);
        // ...and a new reader of an old anomaly missing a field says which.
        wire.kind = pb::FindingKind::DynamicAnomaly as i32;
        let error = Finding::from_bytes(&wire.encode_to_vec()).unwrap_err();
        assert!(
            error.to_string().contains("Finding.expected_mean"),
            "{error}"
        );
    }

    #[test]
    fn non_finite_values_and_absurd_intervals_are_rejected() {
        let mut wire = pb::Finding::from(&sample_finding());
        if let Some(pb::finding::Detail::Trend(trend)) = &mut wire.detail {
            trend.slope_per_hour = f64::NAN;
        }
        let error = Finding::from_bytes(&wire.encode_to_vec()).unwrap_err();
        assert!(
            error.to_string().contains("trend.slope_per_hour"),
            "{error}"
        );

        let run = SensorRun {
            sensor: "trend-predictor".into(),
            instance: "t-0".into(),
            started_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            finished_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            findings: 0,
            errors: vec![],
            interval_seconds: 10_000_000_000_000_000,
            shadow: false,
            warming_up: 0,
        };
        let error = SensorRun::from_bytes(&run.to_bytes()).unwrap_err();
        assert!(error.to_string().contains("interval_seconds"), "{error}");
    }

    #[test]
    fn evidence_round_trips_and_is_bounded() {
        let now = Utc::now();
        let point = |i: i64| BandPoint {
            at: DateTime::from_timestamp_millis(
                now.timestamp_millis() - (MAX_EVIDENCE_POINTS as i64 - i) * 60_000,
            )
            .unwrap(),
            value: i as f64,
            expected: 1.0,
            std: 0.5,
        };
        let mut finding = crate::fixtures::anomaly("rps", "b-0", now);
        let with = |finding: &mut Finding, points: Vec<BandPoint>| {
            if let FindingDetail::DynamicAnomaly(d) = &mut finding.detail {
                d.evidence = points;
            }
        };
        with(
            &mut finding,
            (0..MAX_EVIDENCE_POINTS as i64).map(point).collect(),
        );
        assert_eq!(Finding::from_bytes(&finding.to_bytes()).unwrap(), finding);

        let mut trend = crate::fixtures::trend("disk", &[], "t-0", now);
        if let FindingDetail::TrendBreach(d) = &mut trend.detail {
            d.evidence = Some(LineEvidence {
                // Evidence times travel in milliseconds.
                points: vec![SeriesPoint {
                    at: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap(),
                    value: 70.0,
                }],
                fitted_at_detection: 70.0,
            });
        }
        assert_eq!(Finding::from_bytes(&trend.to_bytes()).unwrap(), trend);
        let mut wire = pb::Finding::from(&trend);
        if let Some(pb::finding::Detail::Trend(d)) = &mut wire.detail {
            d.fitted_at_detection = None;
        }
        let error = Finding::try_from(wire).unwrap_err();
        assert!(error.to_string().contains("fitted_at_detection"), "{error}");

        with(
            &mut finding,
            (0..=MAX_EVIDENCE_POINTS as i64).map(point).collect(),
        );
        let error = Finding::from_bytes(&finding.to_bytes()).unwrap_err();
        assert!(error.to_string().contains("more than 120"), "{error}");
        with(&mut finding, vec![point(2), point(1)]);
        let error = Finding::from_bytes(&finding.to_bytes()).unwrap_err();
        assert!(error.to_string().contains("time order"), "{error}");
        let mut nan = point(1);
        nan.std = f64::NAN;
        with(&mut finding, vec![nan]);
        let error = Finding::from_bytes(&finding.to_bytes()).unwrap_err();
        assert!(error.to_string().contains("evidence"), "{error}");
    }

    /// Issue 10, case 6: a finding's size is bounded at the edge.
    #[test]
    fn oversized_text_is_cut_and_too_many_labels_rejected() {
        let mut finding = sample_finding();
        finding.description = "é".repeat(10_000);
        finding.labels.insert("big".into(), "x".repeat(5_000));
        let decoded = Finding::from_bytes(&finding.to_bytes()).unwrap();
        assert!(decoded.description.len() <= MAX_TEXT_BYTES);
        assert!(decoded.description.ends_with('…'));
        assert!(decoded.labels["big"].len() <= MAX_LABEL_BYTES);
        for i in 0..=MAX_LABELS {
            finding.labels.insert(format!("l{i}"), "v".into());
        }
        let error = Finding::from_bytes(&finding.to_bytes()).unwrap_err();
        assert!(error.to_string().contains("labels"), "{error}");
    }
}
