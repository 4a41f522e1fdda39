//! Start-up and serving: opens the intake, restores state from Redis, starts
//! the intake loop, the Alertmanager pusher and the query responders, and
//! serves HTTP. The loop itself is in `intake`, the state in `core`.

use std::sync::Arc;

use axum::Router;
use chrono::Utc;
use inspector_bus::Bus;
use inspector_domain::InspectionReport;
use inspector_runtime::{OpsState, ops_router, serve_http};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::alertmanager::Notifier;
use crate::config::AggregatorConfig;
use crate::core::Aggregator;
use crate::dedup::{Deduplicator, RedisConnection, RedisSetupError, redis_connection};
use crate::history::{History, IncidentFilter};
use crate::http::{ApiState, api_router};
use crate::intake::{Intake, spawn_pusher};
pub use crate::metrics::AggregatorMetrics;
use crate::owners::Owners;
use crate::responders::spawn_query_responders;
use crate::state::Shared;
use crate::store::Store;

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
        api_router(state, None)
    }
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
    #[error("alertmanager client")]
    Alertmanager(#[source] reqwest::Error),
    #[error(transparent)]
    ApiToken(#[from] crate::config::ApiTokenError),
    #[error("ops server")]
    Ops(#[from] std::io::Error),
    #[error(transparent)]
    Responders(#[from] crate::responders::RespondersError),
    #[error(transparent)]
    Owners(crate::owners::OwnersError),
}

/// Restores from the alerts stream what Redis lost: each condition's
/// latest alert state (so a firing alert continues its episode), and the
/// dedup claims made within `dedup_ttl` (a firing transition is a claim;
/// the claim is dated when the stream stored it). `None` when the stream
/// cannot be read (logged; intake starts anyway).
async fn restore_from_alert_stream(
    bus: &Bus,
    config: &AggregatorConfig,
    shared: &Shared,
) -> Option<Vec<(String, String, chrono::DateTime<Utc>)>> {
    let now = Utc::now();
    // The whole stream (it keeps `alert_max_age`); an absurd age reads from the epoch.
    let since = chrono::Duration::from_std(config.nats.alert_max_age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(chrono::DateTime::UNIX_EPOCH);
    let (kept, malformed) = match bus
        .recent_alerts(since, &config.nats.alert_stream_name())
        .await
    {
        Ok(read) => read,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "Redis has no alert states and the alerts stream cannot be read: conditions of the last dedup_ttl may be reported again"
            );
            return None;
        }
    };
    let ttl = chrono::Duration::from_std(config.dedup_ttl).unwrap_or_default();
    let claims: Vec<_> = kept
        .iter()
        .filter(|k| k.alert.is_firing() && k.stored_at + ttl > now)
        .map(|k| (k.alert.key.clone(), k.alert.finding.id.clone(), k.stored_at))
        .collect();
    let mut latest: std::collections::HashMap<String, inspector_domain::Alert> =
        std::collections::HashMap::new();
    for k in kept {
        latest.insert(k.alert.key.clone(), k.alert);
    }
    tracing::info!(
        alerts = latest.len(),
        claims = claims.len(),
        malformed,
        "Redis had no alert states: restored them and the recent dedup claims from the alerts stream"
    );
    shared.core().restore_alerts(latest.into_values());
    Some(claims)
}

/// A started aggregator: its handle and the tasks to wait for.
#[derive(Debug)]
pub struct RunningAggregator {
    pub handle: AggregatorHandle,
    /// The intake loop; ends after `shutdown` with a final report.
    pub intake: tokio::task::JoinHandle<()>,
    /// The NATS query responders (none on the in-process bus).
    pub responders: Option<tokio::task::JoinHandle<()>>,
    /// The Alertmanager pusher (none without `alertmanager.urls`).
    pub pusher: Option<tokio::task::JoinHandle<()>>,
}

/// `generatorURL` of every alert: where a person finds the report.
fn generator_url(config: &AggregatorConfig, instance: &str) -> String {
    let base = config.alertmanager.external_url.clone().unwrap_or_else(|| {
        let host = if config.listen.ip().is_unspecified() {
            instance.to_string()
        } else {
            config.listen.ip().to_string()
        };
        format!("http://{host}:{}", config.listen.port())
    });
    format!("{}/v1/report/latest", base.trim_end_matches('/'))
}

/// Opens the intake (retrying until `shutdown`), restores alert states and
/// the latest report from Redis, and starts the loop, the Alertmanager
/// pusher and (on NATS) the query responders. `redis: None` keeps
/// everything in process (the demo). `None` when shut down before the
/// intake opened.
pub async fn start(
    config: AggregatorConfig,
    bus: Bus,
    redis: Option<RedisConnection>,
    metrics: AggregatorMetrics,
    instance: String,
    shutdown: CancellationToken,
) -> Result<Option<RunningAggregator>, ServeError> {
    let consumer = config.consumer.clone();
    let ack_wait = config.ack_wait();
    let max_ack_pending = config.max_ack_pending;
    let inbox = loop {
        match bus.inbox(&consumer, ack_wait, max_ack_pending).await {
            Ok(inbox) => break inbox,
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "cannot open the findings consumer; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let store = redis
        .clone()
        .map(|redis| Store::new(redis, &config.redis.key_prefix, config.redis.timeout));
    let mut core = Aggregator::new(config.clone(), instance.clone(), Utc::now());
    let mut latest = None;
    // Redis holding no alert states is a first start, or a Redis that lost
    // everything (restarted without persistence) with us: then the alerts
    // stream tells what was firing and which conditions were claimed.
    let mut redis_was_empty = false;
    if let Some(store) = &store {
        match store.load_alerts().await {
            Ok(alerts) => {
                tracing::info!(alerts = alerts.len(), "alert states restored from Redis");
                redis_was_empty = alerts.is_empty();
                core.restore_alerts(alerts);
            }
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not load alert states from Redis; starting without"
            ),
        }
        match store.load_report().await {
            Ok(report) => latest = report,
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not load the latest report from Redis"
            ),
        }
    }
    let replay = match &store {
        Some(store) if bus.nats_client().is_some() => {
            replay_unreported(&bus, &consumer, store).await
        }
        _ => None,
    };
    metrics
        .report_interval
        .set(config.report_interval.as_secs_f64());
    metrics.init_push_targets(&config.alertmanager.urls);
    // A shutdown during a slow history read stops at once.
    let opened = tokio::select! {
        _ = shutdown.cancelled() => return Ok(None),
        opened = History::open(bus.clone(), &config.nats, &config.history) => opened,
    };
    let history = match opened {
        Ok(history) => {
            let filter = IncidentFilter {
                state: Some("open".into()),
                limit: config.incidents.max_open,
                ..Default::default()
            };
            let open = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                open = history.incidents(&filter) => open,
            };
            match open {
                Ok(open) => {
                    tracing::info!(
                        incidents = open.len(),
                        "open incidents restored from history"
                    );
                    core.restore_incidents(open);
                }
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "could not read open incidents from history; starting without"
                ),
            }
            Some(history)
        }
        Err(error) => {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "history streams unavailable: reports and incidents are served from memory only"
            );
            None
        }
    };
    let shared = Arc::new(Shared::new(core, latest, history.clone()));
    let notifier = if config.alertmanager.urls.is_empty() {
        None
    } else {
        Some(
            Notifier::new(
                config.alertmanager.clone(),
                config.resend_interval(),
                generator_url(&config, &instance),
                metrics.clone(),
            )
            .map_err(ServeError::Alertmanager)?,
        )
    };
    let push_now = Arc::new(Notify::new());
    let pusher = notifier
        .clone()
        .map(|notifier| spawn_pusher(notifier, shared.clone(), push_now.clone(), shutdown.clone()));
    if bus.nats_client().is_some() {
        spawn_consumer_watch(bus.clone(), consumer, metrics.clone(), shutdown.clone());
    }
    let owners = Owners::connect(&config.incidents.owners, metrics.owner_lookups.clone())
        .await
        .map_err(ServeError::Owners)?;
    let (sender, receiver) = mpsc::channel(8);
    let mut dedup = Deduplicator::new(redis, &config.redis, config.dedup_ttl);
    if redis_was_empty {
        let claims = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            claims = restore_from_alert_stream(&bus, &config, &shared) => claims,
        };
        if let Some(claims) = claims {
            dedup.restore_claims(claims);
        }
    }
    // Learn at once whether Redis answers and accepts us (readiness says so).
    dedup.probe().await;
    shared.set_redis_refused(dedup.refused());
    let intake = Intake {
        shared: shared.clone(),
        bus: bus.clone(),
        dedup,
        store,
        notifier,
        push_now,
        metrics,
        report_requests: receiver,
        report_interval: config.report_interval,
        history,
        // Only what this run applies moves the stored sequence (a stream
        // recreated since starts again from 1).
        through: None,
        owners,
        scope: config.incidents.scope.clone(),
    };
    let responders = match bus.nats_client() {
        Some(client) => Some(
            spawn_query_responders(
                client.clone(),
                shared.clone(),
                bus.subjects(),
                &instance,
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let intake = tokio::spawn(intake.run(inbox, replay, shutdown));
    Ok(Some(RunningAggregator {
        handle: AggregatorHandle {
            shared,
            report_requests: sender,
        },
        intake,
        responders,
        pusher,
    }))
}

/// The window a previous run acknowledged but did not report: the stream
/// after the sequence the stored latest report covers (`through`) to the
/// last message the durable consumer delivered. On a
/// first start the consumer's position is recorded as covered, so a crash
/// before the first report is replayed too. `None` when there is nothing to
/// replay or it cannot be known (Redis or NATS not answering).
async fn replay_unreported(
    bus: &Bus,
    consumer: &str,
    store: &Store,
) -> Option<inspector_bus::Inbox> {
    let delivered = match bus.consumer_state(consumer).await {
        Ok(state) => state.delivered_sequence,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not read the intake consumer; the unreported window is not replayed"
            );
            return None;
        }
    };
    let recorded = match store.init_through(delivered).await {
        Ok(recorded) => recorded,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not read the stream sequence of the latest report; the unreported window is not replayed"
            );
            return None;
        }
    };
    if delivered <= recorded {
        return None;
    }
    let through = recorded;
    tracing::info!(
        from = through + 1,
        to = delivered,
        "replaying the window acknowledged but not reported before the restart"
    );
    match bus.replay(through, delivered).await {
        Ok(replay) => Some(replay),
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not replay the unreported window"
            );
            None
        }
    }
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
    let token = config.api.bearer_token()?;
    let router = match config.ops_listen {
        Some(address) => {
            let ops_listener = TcpListener::bind(address).await?;
            tracing::info!(%address, "health and metrics on their own address");
            tokio::spawn(serve_http(
                ops_listener,
                ops_router(ops.clone()),
                shutdown.clone(),
            ));
            api_router(api.clone(), token)
        }
        None => ops_router(ops.clone()).merge(api_router(api.clone(), token)),
    };
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
    .await?
    else {
        return Ok(server.await.unwrap_or(Ok(()))?);
    };
    let _ = api.set(running.handle.shared().clone());
    ops.set_ready(true);
    // Redis refusing our credentials is a config problem: say so on /readyz
    // (an outage is not: dedup then runs in process and the report says so).
    {
        let shared = running.handle.shared().clone();
        let ops = ops.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                ops.set_problem(
                    shared
                        .redis_refused()
                        .map(|reason| format!("dedup store refuses us: {reason}")),
                );
            }
        });
    }
    tracing::info!("aggregator running");
    // A task that dies fails /healthz (Kubernetes restarts the pod) rather
    // than leaving a service that answers but no longer works.
    let mut tasks = vec![ops.supervise("intake", running.intake, shutdown.clone())];
    if let Some(responders) = running.responders {
        tasks.push(ops.supervise("query responders", responders, shutdown.clone()));
    }
    if let Some(pusher) = running.pusher {
        tasks.push(ops.supervise("alertmanager pusher", pusher, shutdown.clone()));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(server.await.unwrap_or(Ok(()))?)
}
