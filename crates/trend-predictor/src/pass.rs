//! One pass of the trend predictor: query every owned metric's recent
//! history (concurrently, bounded), fit each returned series, and turn the
//! reportable ones into findings. A metric that fails (query error, timeout,
//! empty result, non-finite samples) becomes an entry in the pass' errors and
//! never stops the others.

use inspector_membership::Membership;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use inspector_domain::{
    Confidence, Finding, LineEvidence, Observation, SensorError, SeriesPoint, Severity,
    TrendDetail, latest_points,
};
use inspector_prometheus::{MetricSource, PrometheusError, Series};
use inspector_trend::{Assessment, BreachRule, Direction, LinearFit, Outlook, Point, fit_line};

use crate::config::{BreachDirection, MetricRule, TrendPredictorConfig};

/// Name of this sensor in findings, run summaries and subjects.
pub const SENSOR: &str = "trend-predictor";

/// Breaches this close are critical rather than warnings.
const CRITICAL_WITHIN_HOURS: f64 = 1.0;

/// What one pass produced.
#[derive(Debug, Default)]
pub struct PassOutcome {
    pub findings: Vec<Finding>,
    pub errors: Vec<SensorError>,
    /// Series fitted (reportable or not).
    pub series_fitted: usize,
}

/// The fit and verdict for one series.
#[derive(Debug, Clone)]
pub struct SeriesVerdict {
    pub labels: BTreeMap<String, String>,
    pub assessment: Assessment,
    /// Non-finite samples that were left out of the fit.
    pub dropped_non_finite: usize,
}

/// Fits one series as of `now` (the fit's origin, as PromQL's evaluation
/// time is for `predict_linear`) and judges it against `rule`.
pub fn judge_series(
    series: &Series,
    rule: &BreachRule,
    now: DateTime<Utc>,
    min_samples: usize,
) -> Result<SeriesVerdict, String> {
    let points: Vec<Point> = series
        .samples
        .iter()
        .filter(|s| s.value.is_finite())
        .map(|s| Point::new(s.t_ms, s.value))
        .collect();
    let dropped_non_finite = series.samples.len() - points.len();
    if points.len() < min_samples {
        return Err(format!(
            "{} finite samples, need {min_samples}{}",
            points.len(),
            if dropped_non_finite > 0 {
                format!(" ({dropped_non_finite} NaN/Inf left out)")
            } else {
                String::new()
            }
        ));
    }
    let fit: LinearFit = fit_line(&points, now.timestamp_millis()).map_err(|e| e.to_string())?;
    // `points` is non-empty here (min_samples ≥ 2).
    let current = points.last().map_or(f64::NAN, |p| p.value);
    Ok(SeriesVerdict {
        labels: series.labels.clone(),
        assessment: inspector_trend::assess(fit, current, rule),
        dropped_non_finite,
    })
}

/// Runs one pass over the metrics this replica owns.
pub async fn run_pass<S: MetricSource>(
    source: &S,
    config: &TrendPredictorConfig,
    membership: &Membership,
    instance: &str,
    now: DateTime<Utc>,
) -> PassOutcome {
    let start =
        now - chrono::Duration::from_std(config.lookback).unwrap_or(chrono::Duration::hours(1));
    let owned: Vec<&MetricRule> = config
        .metrics
        .iter()
        .filter(|rule| membership.owns(&rule.name))
        .collect();
    let results: Vec<(&MetricRule, Result<Vec<Series>, PrometheusError>)> =
        futures::stream::iter(owned)
            .map(|rule| async move {
                let result = source
                    .query_range(&rule.query, start, now, config.step)
                    .await;
                (rule, result)
            })
            .buffer_unordered(config.concurrency)
            .collect()
            .await;

    let mut outcome = PassOutcome::default();
    for (rule, result) in results {
        let error = |message: String| SensorError {
            subject: rule.name.clone(),
            message,
        };
        let series = match result {
            Ok(series) if series.is_empty() => {
                outcome
                    .errors
                    .push(error(format!("query {:?} returned no series", rule.query)));
                continue;
            }
            Ok(series) => series,
            Err(e) => {
                outcome.errors.push(error(e.to_string()));
                continue;
            }
        };
        let breach_rule = BreachRule {
            threshold: rule.threshold,
            direction: match rule.direction {
                BreachDirection::Above => Direction::Above,
                BreachDirection::Below => Direction::Below,
            },
            horizon_hours: config.horizon_for(rule).as_secs_f64() / 3600.0,
        };
        for one in &series {
            let labels = series_labels(one);
            match judge_series(one, &breach_rule, now, config.min_samples) {
                Ok(verdict) => {
                    outcome.series_fitted += 1;
                    if verdict.dropped_non_finite > 0 {
                        outcome.errors.push(error(format!(
                            "{}: {} NaN/Inf samples left out of the fit",
                            describe_labels(&labels),
                            verdict.dropped_non_finite
                        )));
                    }
                    if verdict.assessment.is_reportable() {
                        outcome.findings.push(make_finding(
                            rule,
                            &breach_rule,
                            one,
                            &verdict.assessment,
                            config.shadow,
                            instance,
                            now,
                        ));
                    }
                }
                Err(message) => outcome
                    .errors
                    .push(error(format!("{}: {message}", describe_labels(&labels)))),
            }
        }
    }
    // Deterministic order for reports and tests.
    outcome.findings.sort_by_key(Finding::dedup_key);
    outcome
}

/// A series' labels without `__name__` (the rule's name is the key).
fn series_labels(series: &Series) -> BTreeMap<String, String> {
    series
        .labels
        .iter()
        .filter(|(name, _)| name.as_str() != "__name__")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn describe_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

fn make_finding(
    rule: &MetricRule,
    breach: &BreachRule,
    series: &Series,
    assessment: &Assessment,
    shadow: bool,
    instance: &str,
    now: DateTime<Utc>,
) -> Finding {
    let side = match breach.direction {
        Direction::Above => "above",
        Direction::Below => "below",
    };
    let slope = assessment.fit.slope_per_hour();
    let confidence = match assessment.confidence {
        inspector_trend::Confidence::Low => Confidence::Low,
        inspector_trend::Confidence::Medium => Confidence::Medium,
        inspector_trend::Confidence::High => Confidence::High,
    };
    let what = if rule.description.is_empty() {
        String::new()
    } else {
        format!(" ({})", rule.description)
    };
    let (severity, hours, description) = match assessment.outlook {
        Outlook::AlreadyBreached => (
            Severity::Critical,
            None,
            format!(
                "{}{what} is {:.4}, already {side} its threshold {}; trend {slope:+.4}/h",
                rule.name, assessment.current, rule.threshold
            ),
        ),
        Outlook::WillBreach { hours_to_breach } => (
            if hours_to_breach <= CRITICAL_WITHIN_HOURS {
                Severity::Critical
            } else {
                Severity::Warning
            },
            Some(hours_to_breach),
            format!(
                "{}{what} is {:.4} and moving {slope:+.4}/h; at this rate it goes {side} {} in {hours_to_breach:.1} h (R² {:.2}, {confidence} confidence)",
                rule.name, assessment.current, rule.threshold, assessment.fit.r_squared
            ),
        ),
        // Not reportable; callers filter these out first.
        Outlook::Safe => (Severity::Info, None, format!("{} is safe", rule.name)),
    };
    Finding::trend_breach(
        Observation {
            key: rule.name.clone(),
            labels: series_labels(series),
            severity,
            description,
            source: rule.query.clone(),
            detected_at: now,
            shadow,
            instance: instance.to_string(),
        },
        TrendDetail {
            current_value: assessment.current,
            threshold: rule.threshold,
            slope_per_hour: slope,
            r_squared: assessment.fit.r_squared,
            confidence,
            predicted_hours_to_breach: hours,
            evidence: line_evidence(series, assessment, now),
        },
    )
}

/// The latest finite samples the line was fitted to, and the line at `now`
/// (none where the line is not a finite number there).
fn line_evidence(
    series: &Series,
    assessment: &Assessment,
    now: DateTime<Utc>,
) -> Option<LineEvidence> {
    let fitted_at_detection = assessment.fit.value_at(now.timestamp_millis());
    if !fitted_at_detection.is_finite() {
        return None;
    }
    let points = series
        .samples
        .iter()
        .filter(|s| s.value.is_finite())
        .filter_map(|s| {
            Some(SeriesPoint {
                at: DateTime::from_timestamp_millis(s.t_ms)?,
                value: s.value,
            })
        })
        .collect();
    Some(LineEvidence {
        points: latest_points(points),
        fitted_at_detection,
    })
}
