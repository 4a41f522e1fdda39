//! The running sensor: a pass every interval, findings and a run summary on
//! the bus, health and metrics over HTTP, clean stop on shutdown.

use std::time::Instant;

use chrono::{DateTime, Utc};
use inspector_bus::Bus;
use inspector_membership::Membership;
use inspector_prometheus::PrometheusClient;
use inspector_runtime::{PassContext, SensorHost, SensorMetrics, publish_pass};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::TrendPredictorConfig;
use crate::pass::{PassOutcome, SENSOR, run_pass};
use inspector_prometheus::MetricSource;

/// The sensor, generic over where history comes from.
#[derive(Debug)]
pub struct TrendPredictor<S> {
    config: TrendPredictorConfig,
    source: S,
    bus: Bus,
    metrics: SensorMetrics,
    membership: Membership,
    instance: String,
}

impl<S: MetricSource> TrendPredictor<S> {
    pub fn new(
        config: TrendPredictorConfig,
        source: S,
        bus: Bus,
        metrics: SensorMetrics,
        membership: Membership,
        instance: String,
    ) -> Self {
        TrendPredictor {
            config,
            source,
            bus,
            metrics,
            membership,
            instance,
        }
    }

    /// One pass as of `now`: evaluate, publish each finding and then the run
    /// summary. Findings that could not be published stay in the bus outbox
    /// (retried on the next publish) and the failure is in the run's errors.
    #[tracing::instrument(name = "trend_pass", skip(self), fields(instance = %self.instance, metrics = self.config.metrics.len()))]
    pub async fn run_once(&self, now: DateTime<Utc>) -> PassOutcome {
        let started = Instant::now();
        let mut outcome = run_pass(
            &self.source,
            &self.config,
            &self.membership,
            &self.instance,
            now,
        )
        .await;
        let context = PassContext {
            sensor: SENSOR,
            instance: &self.instance,
            evaluated_at: now,
            started,
            interval: self.config.interval,
            shadow: self.config.shadow,
            // A trend fits from the query alone: nothing to warm up.
            warming_up: 0,
        };
        let run = publish_pass(
            &self.bus,
            &self.metrics,
            context,
            &outcome.findings,
            outcome.errors,
        )
        .await;
        // The outcome reports what the run summary said, publish failures included.
        outcome.errors = run.errors;
        outcome
    }

    /// Runs passes every interval until `shutdown`, then drains the outbox.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // A pass waiting on Prometheus or NATS is dropped at shutdown:
            // what it queued stays in the outbox and is drained or spooled.
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = self.run_once(Utc::now()) => outcome,
            };
            tracing::info!(
                findings = outcome.findings.len(),
                errors = outcome.errors.len(),
                series = outcome.series_fitted,
                "pass done"
            );
        }
        self.bus
            .drain_outbox(inspector_runtime::service_main::drain_budget())
            .await;
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

/// The whole service: ops endpoints on `ops_listener`, passes until `shutdown`.
pub async fn serve(
    config: TrendPredictorConfig,
    ops_listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let host = SensorHost::start(ops_listener, &shutdown);
    if !config.enabled {
        return Ok(host.idle_disabled(SENSOR, &shutdown).await?);
    }
    let source = PrometheusClient::new(config.prometheus.clone())?;
    let membership = Membership::start(&config.shard, shutdown.clone()).await?;
    let Some(bus) = Bus::connect_with_retry(
        &config.nats,
        &format!("{SENSOR}/{}", host.instance),
        &shutdown,
    )
    .await
    else {
        return Ok(host.finish().await?);
    };
    tracing::info!(
        metrics = config.metrics.len(),
        shard = ?config.shard,
        shadow = config.shadow,
        "trend-predictor running"
    );
    host.ops.set_ready(true);
    TrendPredictor::new(
        config,
        source,
        bus,
        host.metrics.clone(),
        membership,
        host.instance.clone(),
    )
    .run(shutdown)
    .await;
    Ok(host.finish().await?)
}
