//! The running sensor: a background retrain loop, a detection pass every
//! interval publishing findings and a run summary, health and metrics.

use inspector_membership::Membership;
use std::time::Instant;

use chrono::Utc;
use inspector_bus::Bus;
use inspector_domain::SensorRun;
use inspector_prometheus::{MetricSource, PrometheusClient};
use inspector_runtime::{PassContext, SensorHost, SensorMetrics, publish_pass};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::BaselineDetectorConfig;
use crate::detector::{Detector, SENSOR};

/// One detection pass: judge, publish findings, publish the run summary;
/// returns the summary.
pub async fn run_pass<S: MetricSource>(
    detector: &Detector<S>,
    bus: &Bus,
    metrics: &SensorMetrics,
    instance: &str,
) -> SensorRun {
    let started = Instant::now();
    let now = Utc::now();
    let outcome = detector.detect(now).await;
    let context = PassContext {
        sensor: SENSOR,
        instance,
        evaluated_at: now,
        started,
        interval: detector.config().interval,
        shadow: detector.config().shadow,
        warming_up: outcome.warming_up,
    };
    publish_pass(bus, metrics, context, &outcome.findings, outcome.errors).await
}

/// Refits every `retrain_interval`, and at once when this instance's share
/// of the series changes (a scale brings series without a baseline), until
/// `shutdown`; `fitted` hears how many series each retrain fitted.
/// Detection never waits for it.
pub async fn retrain_loop<S: MetricSource>(
    detector: Detector<S>,
    mut membership: Membership,
    shutdown: CancellationToken,
    mut fitted: impl FnMut(usize),
) {
    let mut ticker = tokio::time::interval(detector.config().retrain_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
            true = membership.changed() => {}
        }
        // A retrain waiting on Prometheus is dropped at shutdown.
        let series = tokio::select! {
            _ = shutdown.cancelled() => break,
            series = detector.retrain(Utc::now()) => series,
        };
        tracing::info!(series, "baselines refitted");
        fitted(series);
    }
}

/// A detection pass every `interval` until `shutdown`. In-flight queries
/// are cancelled at shutdown; what a pass queued stays in the outbox.
pub async fn pass_loop<S: MetricSource>(
    detector: &Detector<S>,
    bus: &Bus,
    metrics: &SensorMetrics,
    instance: &str,
    shutdown: &CancellationToken,
) {
    let mut ticker = tokio::time::interval(detector.config().interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = run_pass(detector, bus, metrics, instance) => {}
        }
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Prometheus(#[from] inspector_prometheus::PrometheusError),
    #[error("ops server: {0}")]
    Ops(#[from] std::io::Error),
    #[error(transparent)]
    Membership(#[from] inspector_membership::MembershipError),
}

/// The whole service: ops endpoints on `listener`, passes until `shutdown`.
pub async fn serve(
    config: BaselineDetectorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let host = SensorHost::start(listener, &shutdown);
    if !config.enabled {
        return Ok(host.idle_disabled(SENSOR, &shutdown).await?);
    }
    let prometheus = PrometheusClient::new(config.prometheus.clone())?;
    let instance = host.instance.clone();
    let membership = Membership::start(&config.shard, shutdown.clone()).await?;
    let Some(bus) =
        Bus::connect_with_retry(&config.nats, &format!("{SENSOR}/{instance}"), &shutdown).await
    else {
        return Ok(host.finish().await?);
    };
    let detector = Detector::new(
        config.clone(),
        prometheus,
        membership.clone(),
        instance.clone(),
    );
    // Background retraining: detection never waits for it. Until the first
    // fit ends, readiness says the detector is warming up.
    host.ops.set_problem(Some(
        "warming up: the first baselines are being fitted".into(),
    ));
    let ops = host.ops.clone();
    let retrainer = tokio::spawn(retrain_loop(
        detector.clone(),
        membership,
        shutdown.clone(),
        move |_| ops.set_problem(None),
    ));
    let retrainer = host.ops.supervise("retrain", retrainer, shutdown.clone());
    host.ops.set_ready(true);
    tracing::info!(metrics = config.metrics.len(), "baseline-detector running");
    pass_loop(&detector, &bus, &host.metrics, &instance, &shutdown).await;
    let _ = retrainer.await;
    bus.drain_outbox(inspector_runtime::service_main::drain_budget())
        .await;
    Ok(host.finish().await?)
}
