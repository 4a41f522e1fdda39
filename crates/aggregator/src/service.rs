//! The running aggregator: reads the durable intake, deduplicates, raises
//! alerts, closes a report every interval, and serves the latest report and
//! the anomaly context over HTTP and NATS request-reply.
//!
//! Findings are acknowledged to JetStream only once the report that contains
//! them is assembled: an aggregator that dies mid-window gets them redelivered
//! on restart, and a graceful stop closes a last report first.

use std::sync::{Arc, RwLock};

use axum::Router;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use inspector_bus::{Bus, Delivery, Inbox};
use inspector_domain::InspectionReport;
use inspector_domain::wire::WireMessage;
use inspector_runtime::{OpsState, ops_router, serve_http};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::AggregatorConfig;
use crate::context::AnomalyContext;
use crate::core::{Aggregator, Handled};
use crate::dedup::{Deduplicator, RedisConnection, RedisSetupError, redis_connection};
use crate::http::{ApiState, api_router};
pub use crate::metrics::AggregatorMetrics;

/// Queue group for request-reply, so replicas share the queries.
const QUERY_GROUP: &str = "aggregator";

/// State shared between the intake loop and the query handlers.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Aggregator>,
    latest: RwLock<Option<InspectionReport>>,
    /// Messages taken from the intake so far (any outcome).
    processed: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Messages taken from the intake so far, valid or not.
    pub fn processed(&self) -> u64 {
        self.processed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The latest assembled report, if any.
    pub fn latest_report(&self) -> Option<InspectionReport> {
        self.latest.read().ok().and_then(|latest| latest.clone())
    }

    /// The anomaly context as of now.
    pub async fn anomaly_context(&self) -> AnomalyContext {
        let now = Utc::now();
        let mut core = self.core.lock().await;
        let findings = core.recent_findings(now);
        let sensors = core.sensor_statuses(now);
        let config = core.config();
        AnomalyContext::build(
            findings,
            &sensors,
            config.shadow,
            config.context_window,
            config.context_max_findings,
            now,
        )
    }
}

/// A handle for callers outside the loop (HTTP, tests, the demo).
#[derive(Debug, Clone)]
pub struct AggregatorHandle {
    shared: Arc<Shared>,
    report_requests: mpsc::Sender<oneshot::Sender<InspectionReport>>,
}

impl AggregatorHandle {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Closes the current window now (instead of at the next tick) and
    /// returns the report; `None` when the loop has stopped.
    pub async fn report_now(&self) -> Option<InspectionReport> {
        let (reply, receive) = oneshot::channel();
        self.report_requests.send(reply).await.ok()?;
        receive.await.ok()
    }

    /// `/v1/...` routes serving this aggregator.
    pub fn api_router(&self) -> Router {
        let state = ApiState::default();
        let _ = state.set(self.shared.clone());
        api_router(state)
    }
}

/// The aggregator loop and what it owns.
#[derive(Debug)]
pub struct AggregatorService {
    shared: Arc<Shared>,
    bus: Bus,
    redis: Option<RedisConnection>,
    report_key: String,
    metrics: AggregatorMetrics,
    report_requests: mpsc::Receiver<oneshot::Sender<InspectionReport>>,
    report_interval: std::time::Duration,
}

impl AggregatorService {
    /// Builds the service and its handle. `redis: None` deduplicates in
    /// process only (the demo).
    pub async fn new(
        config: AggregatorConfig,
        bus: Bus,
        redis: Option<RedisConnection>,
        metrics: AggregatorMetrics,
        instance: String,
    ) -> (AggregatorService, AggregatorHandle) {
        let report_key = format!("{}:report:latest", config.redis.key_prefix);
        let report_interval = config.report_interval;
        metrics.report_interval.set(report_interval.as_secs_f64());
        let dedup = Deduplicator::new(redis.clone(), &config.redis, config.dedup_ttl);
        let latest = match &redis {
            Some(redis) => load_latest(redis.clone(), &report_key, config.redis.timeout).await,
            None => None,
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(Aggregator::new(
                config,
                bus.subjects().clone(),
                dedup,
                instance,
                Utc::now(),
            )),
            latest: RwLock::new(latest),
            processed: Default::default(),
        });
        let (sender, receiver) = mpsc::channel(8);
        (
            AggregatorService {
                shared: shared.clone(),
                bus,
                redis,
                report_key,
                metrics,
                report_requests: receiver,
                report_interval,
            },
            AggregatorHandle {
                shared,
                report_requests: sender,
            },
        )
    }

    /// Runs until `shutdown`, then closes a last report and acknowledges it.
    pub async fn run(mut self, mut inbox: Inbox, shutdown: CancellationToken) {
        let mut held: Vec<Delivery> = Vec::new();
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.report_interval,
            self.report_interval,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(reply) = self.report_requests.recv() => {
                    let report = self.close_window(&mut held).await;
                    let _ = reply.send(report);
                }
                _ = ticker.tick() => {
                    self.close_window(&mut held).await;
                }
                next = inbox.next() => match next {
                    Some(Ok(delivery)) => self.take(delivery, &mut held).await,
                    Some(Err(error)) => {
                        self.metrics.count("consumer_error");
                        tracing::warn!(%error, "findings consumer error; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                    None => break,
                },
            }
        }
        let report = self.close_window(&mut held).await;
        tracing::info!(
            findings = report.findings.len(),
            "final report closed on shutdown"
        );
    }

    #[tracing::instrument(name = "aggregator_message", skip_all, fields(subject = %delivery.subject, bytes = delivery.payload.len()))]
    async fn take(&self, delivery: Delivery, held: &mut Vec<Delivery>) {
        let handled = {
            let mut core = self.shared.core.lock().await;
            core.handle(&delivery.subject, &delivery.payload, Utc::now())
                .await
        };
        self.shared
            .processed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match handled {
            Handled::Malformed(_) => {
                self.metrics.count("malformed");
                // Garbage never becomes valid: stop JetStream redelivering it.
                if let Err(error) = delivery.reject().await {
                    self.metrics.count("ack_error");
                    tracing::warn!(%error, "could not terminate a malformed message");
                }
                return;
            }
            Handled::NewFinding { finding, alert } => {
                self.metrics.new_finding(&finding);
                if alert {
                    let subject = self.bus.subjects().alerts();
                    match self
                        .bus
                        .publish_event(&subject, Bytes::from(finding.to_bytes()))
                        .await
                    {
                        Ok(()) => {
                            self.metrics.count("alert");
                            self.shared.core.lock().await.alert_published();
                        }
                        Err(error) => {
                            self.metrics.count("alert_error");
                            tracing::error!(%error, finding = %finding.id, "alert not published (the finding stays in the report)");
                        }
                    }
                }
            }
            Handled::Duplicate => self.metrics.count("duplicate"),
            Handled::AlreadyCounted => {}
            Handled::Run => self.metrics.count("run"),
        }
        held.push(delivery);
    }

    #[tracing::instrument(name = "aggregator_report", skip_all, fields(held = held.len()))]
    async fn close_window(&self, held: &mut Vec<Delivery>) -> InspectionReport {
        let report = self.shared.core.lock().await.assemble_report(Utc::now());
        let bytes = Bytes::from(report.to_bytes());
        if let Err(error) = self
            .bus
            .publish_event(&self.bus.subjects().reports(), bytes.clone())
            .await
        {
            self.metrics.count("report_error");
            tracing::error!(%error, "report not published on the bus (still served)");
        }
        if let Some(redis) = &self.redis {
            let mut redis = redis.clone();
            let stored: Result<(), redis::RedisError> = redis::cmd("SET")
                .arg(&self.report_key)
                .arg(bytes.as_ref())
                .query_async(&mut redis)
                .await;
            if let Err(error) = stored {
                self.metrics.count("report_error");
                tracing::warn!(%error, "latest report not stored in Redis (served from memory)");
            }
        }
        if let Ok(mut latest) = self.shared.latest.write() {
            *latest = Some(report.clone());
        }
        self.metrics.count("report");
        self.metrics.observe_report(&report);
        for delivery in held.drain(..) {
            if let Err(error) = delivery.ack().await {
                self.metrics.count("ack_error");
                tracing::warn!(%error, "ack failed; JetStream will redeliver (deduplicated)");
            }
        }
        tracing::info!(
            findings = report.findings.len(),
            duplicates = report.duplicates_suppressed,
            malformed = report.malformed_messages,
            dedup = %report.dedup_backend,
            "inspection report"
        );
        report
    }
}

async fn load_latest(
    mut redis: RedisConnection,
    key: &str,
    timeout: std::time::Duration,
) -> Option<InspectionReport> {
    let command = redis::cmd("GET").arg(key).clone();
    let fetch = command.query_async::<Option<Vec<u8>>>(&mut redis);
    match tokio::time::timeout(timeout * 3, fetch).await {
        Ok(Ok(Some(bytes))) => match InspectionReport::from_bytes(&bytes) {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::warn!(%error, %key, "stored latest report is unreadable; ignoring it");
                None
            }
        },
        Ok(Ok(None)) => None,
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not load the latest report from Redis");
            None
        }
        Err(_) => {
            tracing::warn!("Redis did not answer when loading the latest report");
            None
        }
    }
}

/// Answers the NATS request-reply queries until `shutdown`.
pub fn spawn_query_responders(
    client: async_nats::Client,
    handle: AggregatorHandle,
    report_subject: String,
    context_subject: String,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let subscriptions = futures::future::try_join(
            client.queue_subscribe(report_subject.clone(), QUERY_GROUP.into()),
            client.queue_subscribe(context_subject.clone(), QUERY_GROUP.into()),
        )
        .await;
        let (mut reports, mut contexts) = match subscriptions {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(%error, "cannot subscribe to the query subjects");
                return;
            }
        };
        loop {
            let (message, body) = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(message) = reports.next() => {
                    // Empty body: no report assembled yet.
                    let body = handle.shared.latest_report().map(|r| r.to_bytes()).unwrap_or_default();
                    (message, body)
                }
                Some(message) = contexts.next() => {
                    let context = handle.shared.anomaly_context().await;
                    (message, serde_json::to_vec(&context).unwrap_or_default())
                }
                else => break,
            };
            if let Some(reply) = message.reply
                && let Err(error) = client.publish(reply, body.into()).await
            {
                tracing::warn!(%error, "could not answer a query");
            }
        }
    })
}

/// How often the intake consumer's backlog is read for `/metrics`.
const CONSUMER_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Reads the intake consumer's pending/redelivered counts into the metrics
/// every [`CONSUMER_WATCH_INTERVAL`] until `shutdown`.
fn spawn_consumer_watch(
    bus: Bus,
    durable: String,
    metrics: AggregatorMetrics,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CONSUMER_WATCH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match bus.consumer_state(&durable).await {
                Ok(state) => metrics.observe_consumer(state),
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "could not read the intake consumer's state"
                ),
            }
        }
    });
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
    #[error("ops server: {0}")]
    Ops(#[from] std::io::Error),
}

/// A started aggregator: its handle and the tasks to wait for.
#[derive(Debug)]
pub struct RunningAggregator {
    pub handle: AggregatorHandle,
    /// The intake loop; ends after `shutdown` with a final report.
    pub intake: tokio::task::JoinHandle<()>,
    /// The NATS query responders (none on the in-process bus).
    pub responders: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the intake (retrying until `shutdown`), starts the loop and, on
/// NATS, the query responders. `None` when shut down before the intake opened.
pub async fn start(
    config: AggregatorConfig,
    bus: Bus,
    redis: Option<RedisConnection>,
    metrics: AggregatorMetrics,
    instance: String,
    shutdown: CancellationToken,
) -> Option<RunningAggregator> {
    let consumer = config.consumer.clone();
    let ack_wait = config.ack_wait();
    let max_ack_pending = config.max_ack_pending;
    let inbox = loop {
        match bus.inbox(&consumer, ack_wait, max_ack_pending).await {
            Ok(inbox) => break inbox,
            Err(error) => {
                tracing::error!(%error, "cannot open the findings consumer; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let metrics_for_watch = metrics.clone();
    let (service, handle) =
        AggregatorService::new(config, bus.clone(), redis, metrics, instance).await;
    let responders = bus.nats_client().map(|client| {
        spawn_query_responders(
            client.clone(),
            handle.clone(),
            bus.subjects().report_query(),
            bus.subjects().anomaly_context_query(),
            shutdown.clone(),
        )
    });
    if bus.nats_client().is_some() {
        spawn_consumer_watch(bus.clone(), consumer, metrics_for_watch, shutdown.clone());
    }
    let intake = tokio::spawn(service.run(inbox, shutdown));
    Some(RunningAggregator {
        handle,
        intake,
        responders,
    })
}

/// The whole service: HTTP on `listener`, intake until `shutdown`.
pub async fn serve(
    config: AggregatorConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let mut registry = Registry::default();
    let metrics = AggregatorMetrics::register(
        &mut registry,
        config
            .sensors
            .iter()
            .filter(|(_, sensor)| sensor.enabled)
            .map(|(name, _)| name.as_str()),
    );
    let ops = OpsState::new(registry);
    let instance = inspector_runtime::instance_name();
    let redis = redis_connection(&config.redis)?;
    // Health and metrics answer (not ready) while NATS is awaited; the API
    // answers 503 until the aggregator has started.
    let api = ApiState::default();
    let router = ops_router(ops.clone()).merge(api_router(api.clone()));
    let server = tokio::spawn(serve_http(listener, router, shutdown.clone()));

    let Some(bus) =
        Bus::connect_with_retry(&config.nats, &format!("aggregator/{instance}"), &shutdown).await
    else {
        return Ok(server.await.unwrap_or(Ok(()))?);
    };
    let Some(running) = start(
        config,
        bus,
        Some(redis),
        metrics,
        instance,
        shutdown.clone(),
    )
    .await
    else {
        return Ok(server.await.unwrap_or(Ok(()))?);
    };
    let _ = api.set(running.handle.shared().clone());
    ops.set_ready(true);
    tracing::info!("aggregator running");
    let _ = running.intake.await;
    if let Some(responders) = running.responders {
        let _ = responders.await;
    }
    Ok(server.await.unwrap_or(Ok(()))?)
}
