//! Publishing what one sensor pass found: each finding, then the run
//! summary, with the logs and counters every metric sensor keeps. A publish
//! that fails stays in the bus outbox (retried on the next publish) and is
//! reported in the run's errors, so nothing is lost and the report says why.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inspector_bus::Bus;
use inspector_domain::{Finding, SensorError, SensorRun};

use crate::SensorMetrics;

/// Who ran the pass, and when.
#[derive(Debug, Clone, Copy)]
pub struct PassContext<'a> {
    pub sensor: &'a str,
    pub instance: &'a str,
    /// The pass' evaluation time (the run summary's start).
    pub evaluated_at: DateTime<Utc>,
    /// When the pass began, for its duration.
    pub started: Instant,
    /// Time between passes (tells the aggregator when a sensor is stale).
    pub interval: Duration,
    pub shadow: bool,
    /// Series watched but not judged yet (no model before the first fit).
    pub warming_up: u32,
}

/// Publishes `findings`, then the run summary carrying `errors` (plus one for
/// NATS if a publish failed); counts findings, errors by kind, the pass and
/// its duration. Returns the summary published.
pub async fn publish_pass(
    bus: &Bus,
    metrics: &SensorMetrics,
    context: PassContext<'_>,
    findings: &[Finding],
    mut errors: Vec<SensorError>,
) -> SensorRun {
    for error in &errors {
        tracing::warn!(sensor = context.sensor, subject = %error.subject, error = %error.message, "skipped this pass");
        metrics.error("query");
    }
    let mut publish_failure = None;
    for finding in findings {
        tracing::info!(sensor = context.sensor, finding = %finding.description, severity = %finding.severity, "finding");
        match bus.publish_finding(finding).await {
            Ok(()) => {
                metrics.findings.inc();
            }
            Err(error) => {
                metrics.error("publish");
                publish_failure = Some(crate::error_chain(&error));
            }
        }
    }
    if let Some(message) = publish_failure {
        let pending = bus.pending().await;
        tracing::error!(%message, pending, "publishing findings failed; kept for retry");
        errors.push(SensorError {
            subject: "nats".into(),
            message: format!("publish failed, findings queued for retry: {message}"),
        });
    }
    let elapsed = context.started.elapsed();
    let run = SensorRun {
        sensor: context.sensor.into(),
        instance: context.instance.into(),
        started_at: context.evaluated_at,
        finished_at: context.evaluated_at + chrono::Duration::from_std(elapsed).unwrap_or_default(),
        findings: findings.len() as u32,
        errors,
        interval_seconds: context.interval.as_secs().max(1),
        shadow: context.shadow,
        warming_up: context.warming_up,
    };
    if let Err(error) = bus.publish_run(&run).await {
        metrics.error("publish");
        tracing::error!(
            error = &error as &dyn std::error::Error,
            "publishing the run summary failed; kept for retry"
        );
    }
    metrics.publish_pending.set(bus.pending().await as i64);
    metrics.pass_done(elapsed);
    run
}
