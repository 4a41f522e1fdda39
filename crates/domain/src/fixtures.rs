//! Example findings for tests (feature `fixtures`): one place that spells
//! out a whole finding, so tests say only what matters to them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{
    AnomalyDetail, Confidence, Finding, LogPatternDetail, Observation, Severity, TrendDetail,
};

/// An observation of `key` with `labels` by `instance` at `detected_at`.
pub fn observation(
    key: &str,
    labels: &[(&str, &str)],
    instance: &str,
    detected_at: DateTime<Utc>,
) -> Observation {
    Observation {
        key: key.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        severity: Severity::Warning,
        description: format!("{key} rising"),
        source: key.into(),
        detected_at,
        shadow: false,
        instance: instance.into(),
    }
}

/// A trend finding: at 70 of 90, +10/h, 2 h to breach.
pub fn trend(
    key: &str,
    labels: &[(&str, &str)],
    instance: &str,
    detected_at: DateTime<Utc>,
) -> Finding {
    Finding::trend_breach(
        observation(key, labels, instance, detected_at),
        TrendDetail {
            current_value: 70.0,
            threshold: 90.0,
            slope_per_hour: 10.0,
            r_squared: 0.95,
            confidence: Confidence::High,
            predicted_hours_to_breach: Some(2.0),
            evidence: None,
        },
    )
}

/// A critical baseline deviation: 10 where 1 ± 1 was expected.
pub fn anomaly(key: &str, instance: &str, detected_at: DateTime<Utc>) -> Finding {
    let mut observation = observation(key, &[], instance, detected_at);
    observation.severity = Severity::Critical;
    observation.description = format!("{key} is far from its baseline");
    Finding::dynamic_anomaly(
        observation,
        AnomalyDetail {
            current_value: 10.0,
            expected_mean: 1.0,
            expected_std: 1.0,
            deviation_sigma: 9.0,
            evidence: Vec::new(),
        },
    )
}

/// A new log shape of `workload`.
pub fn log_pattern(workload: &str, template: &str, detected_at: DateTime<Utc>) -> Finding {
    Finding::log_pattern(
        observation(
            &format!("{workload}#1"),
            &[("workload", workload)],
            "log-0",
            detected_at,
        ),
        LogPatternDetail {
            template: template.into(),
            example: template.into(),
        },
    )
}

/// `finding` with exactly `labels`, its id recomputed.
pub fn labelled(mut finding: Finding, labels: &[(&str, &str)]) -> Finding {
    finding.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    finding.with_computed_id()
}
