//! The intake loop: takes decoded messages from the durable consumer in
//! batches (whatever has arrived, up to [`BATCH`]), asks the dedup store for
//! the batch's verdicts in one round of pipelined requests (no lock held
//! while Redis answers), applies messages and verdicts to the core in one
//! short synchronous step, publishes the alert transitions that step
//! returns, acknowledges the batch, and closes a report every interval.
//!
//! Acknowledging at intake, not at the report, is what keeps intake at its
//! own pace: JetStream never holds more than one batch unacknowledged, so
//! `max_ack_pending` is not a ceiling on findings per report window. The
//! window is still never lost: the stream keeps every message (limits
//! retention), each report is stored with the stream sequence it covers
//! (`through`), and an aggregator that starts after a crash replays the
//! stream from there to what its consumer had delivered, rebuilding the
//! window it had acknowledged but not yet reported (see `service::start`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use inspector_bus::{Bus, Delivery, Inbox, Incoming};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, InspectionReport, ScopeRules};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::alertmanager::Notifier;
use crate::core::Counted;
use crate::dedup::{Deduplicator, Verdict};
use crate::history::History;
use crate::metrics::AggregatorMetrics;
use crate::owners::Owners;
use crate::state::Shared;
use crate::store::Store;

/// Most messages handled in one step (one dedup round trip, one lock).
pub const BATCH: usize = inspector_bus::PULL_BATCH;

/// Batches of alert transitions the publisher may be behind intake.
const BACKLOG: usize = 64;

/// How often incident transitions are published (coalesced per incident).
const INCIDENT_FLUSH: Duration = Duration::from_secs(1);

/// A replay that has delivered nothing for this long has reached the end of
/// what the stream still holds (messages past `max_age` are gone).
const REPLAY_IDLE: Duration = Duration::from_secs(2);

/// The intake loop and what it owns.
#[derive(Debug)]
pub struct Intake {
    pub(crate) shared: Arc<Shared>,
    pub(crate) bus: Bus,
    pub(crate) dedup: Deduplicator,
    pub(crate) store: Option<Store>,
    pub(crate) notifier: Option<Notifier>,
    /// Wakes the Alertmanager pusher on a transition.
    pub(crate) push_now: Arc<Notify>,
    pub(crate) metrics: AggregatorMetrics,
    pub(crate) report_requests: mpsc::Receiver<oneshot::Sender<InspectionReport>>,
    pub(crate) report_interval: Duration,
    /// Where reports and incident transitions are kept.
    pub(crate) history: Option<History>,
    /// Highest stream sequence applied so far (stored with each report).
    pub(crate) through: Option<u64>,
    /// Pod owners from the Kubernetes API (cached).
    pub(crate) owners: Owners,
    /// Which findings name a pod to look up.
    pub(crate) scope: ScopeRules,
}

impl Intake {
    /// Replays `replay` first (the window a crashed predecessor had
    /// acknowledged but not reported), then runs on `inbox` until
    /// `shutdown`, then closes a last report.
    pub async fn run(
        mut self,
        mut inbox: Inbox,
        replay: Option<Inbox>,
        shutdown: CancellationToken,
    ) {
        let (publisher, transitions) = mpsc::channel(BACKLOG);
        let alert_publisher = tokio::spawn(publish_alerts(
            transitions,
            self.bus.clone(),
            self.shared.clone(),
            self.metrics.clone(),
            self.push_now.clone(),
        ));
        if let Some(replay) = replay {
            self.replay(replay, &publisher, &shutdown).await;
        }
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.report_interval,
            self.report_interval,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut incident_ticker = tokio::time::interval(INCIDENT_FLUSH);
        incident_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = incident_ticker.tick() => self.publish_incidents().await,
                Some(reply) = self.report_requests.recv() => {
                    flush(&publisher).await;
                    let report = self.close_window().await;
                    let _ = reply.send(report);
                }
                _ = ticker.tick() => {
                    flush(&publisher).await;
                    self.close_window().await;
                }
                next = inbox.next_batch(BATCH) => match next {
                    Some(Ok(batch)) => self.take(batch, &publisher).await,
                    Some(Err(error)) => {
                        self.metrics.count("consumer_error");
                        tracing::warn!(error = &error as &dyn std::error::Error, "findings consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    None => break,
                },
            }
        }
        // Every transition is handed to the bus (sent, or kept in its outbox
        // for the shutdown drain) before the last report.
        drop(publisher);
        let _ = alert_publisher.await;
        let report = self.close_window().await;
        tracing::info!(
            findings = report.findings.len(),
            "final report closed on shutdown"
        );
    }

    /// Applies what a replay delivers until it ends, goes idle or fails.
    async fn replay(
        &mut self,
        mut replay: Inbox,
        publisher: &mpsc::Sender<ToPublisher>,
        shutdown: &CancellationToken,
    ) {
        let mut replayed = 0usize;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = tokio::time::timeout(REPLAY_IDLE, replay.next_batch(BATCH)) => next,
            };
            match next {
                Ok(Some(Ok(batch))) => {
                    replayed += batch.len();
                    self.take(batch, publisher).await;
                }
                Ok(Some(Err(error))) => {
                    self.metrics.count("consumer_error");
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "replay of the unreported window failed; the next report may miss part of it"
                    );
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        tracing::info!(
            messages = replayed,
            "replayed the window acknowledged but not reported before the restart"
        );
    }

    /// Handles one batch: verdicts for its new findings in one round, one
    /// step of the core, the transitions published, the batch acknowledged.
    #[tracing::instrument(name = "aggregator_batch", skip_all, fields(messages = batch.len()))]
    async fn take(&mut self, batch: Vec<Delivery>, publisher: &mpsc::Sender<ToPublisher>) {
        let now = Utc::now();
        let mut kept = Vec::with_capacity(batch.len());
        let taken = batch.len();
        for delivery in batch {
            if let Incoming::Malformed { reason } = &delivery.incoming {
                tracing::warn!(subject = %delivery.subject, bytes = delivery.bytes, %reason, "skipping malformed message");
                self.shared.core().malformed();
                self.metrics.count("malformed");
                // Garbage never becomes valid: stop JetStream redelivering it.
                if let Err(error) = delivery.reject().await {
                    self.metrics.count("ack_error");
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "could not terminate a malformed message"
                    );
                }
                continue;
            }
            kept.push(delivery);
        }
        // Findings this window already counted (redeliveries) need no verdict.
        let keys: Vec<Option<String>> = {
            let core = self.shared.core();
            kept.iter()
                .map(|delivery| match &delivery.incoming {
                    Incoming::Finding(finding) if !core.is_counted(&finding.id) => {
                        Some(finding.dedup_key())
                    }
                    _ => None,
                })
                .collect()
        };
        let claims: Vec<(&str, &str)> = kept
            .iter()
            .zip(&keys)
            .filter_map(|(delivery, key)| match (&delivery.incoming, key) {
                (Incoming::Finding(finding), Some(key)) => {
                    Some((key.as_str(), finding.id.as_str()))
                }
                _ => None,
            })
            .collect();
        // Owners of the pods these findings name, asked while Redis answers.
        let pods = kept.iter().filter_map(|delivery| match &delivery.incoming {
            Incoming::Finding(finding) => self.scope.pod_to_look_up(&finding.labels),
            _ => None,
        });
        let (verdicts, ()) = tokio::join!(
            self.dedup.check_many(&claims, now),
            self.owners.prepare(pods)
        );
        let mut verdicts = verdicts.into_iter();
        let mut transitions = Vec::new();
        {
            let mut core = self.shared.core();
            for (delivery, key) in kept.iter().zip(&keys) {
                match &delivery.incoming {
                    Incoming::Finding(finding) => {
                        let verdict = if key.is_some() {
                            verdicts.next().unwrap_or(Verdict::Redelivery)
                        } else {
                            Verdict::Redelivery
                        };
                        let outcome = core.apply_finding_with(
                            (**finding).clone(),
                            verdict,
                            now,
                            &self.owners,
                        );
                        match outcome.counted {
                            Counted::New => self.metrics.new_finding(finding),
                            Counted::Duplicate => self.metrics.count("duplicate"),
                            Counted::AlreadyCounted => {}
                        }
                        transitions.extend(outcome.transition);
                    }
                    Incoming::Run(run) => {
                        self.metrics.count("run");
                        transitions.extend(core.apply_run(run.clone(), now));
                    }
                    Incoming::Malformed { .. } => {}
                }
            }
        }
        // Counted once applied: a reader that saw the count sees the state.
        self.shared.count_processed(taken);
        self.publish_transitions(publisher, transitions).await;
        for delivery in kept {
            if let Some(sequence) = delivery.sequence {
                self.through = Some(self.through.map_or(sequence, |t| t.max(sequence)));
            }
            if let Err(error) = delivery.ack().await {
                self.metrics.count("ack_error");
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "ack failed; JetStream will redeliver (deduplicated)"
                );
            }
        }
    }

    /// Hands alert transitions to the alert publisher (in order); shadow
    /// alerts go nowhere. Waits only when the publisher is [`BATCH`]es
    /// behind.
    async fn publish_transitions(
        &self,
        publisher: &mpsc::Sender<ToPublisher>,
        transitions: Vec<Alert>,
    ) {
        for alert in &transitions {
            tracing::info!(key = %alert.key, state = alert.status.as_str(), shadow = alert.shadow, "alert transition");
        }
        let sent: Vec<Alert> = transitions
            .into_iter()
            .filter(|alert| !alert.shadow)
            .collect();
        if !sent.is_empty() && publisher.send(ToPublisher::Alerts(sent)).await.is_err() {
            tracing::error!("the alert publisher has stopped; transitions not published");
        }
    }

    /// Publishes the incident transitions since the last call, each the
    /// incident's latest state; kept for the next call when the bus fails.
    async fn publish_incidents(&mut self) {
        let events = {
            let mut core = self.shared.core();
            let events = core.take_incident_events(Utc::now());
            self.metrics
                .incidents_open
                .set(core.open_incidents() as i64);
            self.metrics
                .incidents_refused
                .set(core.incidents_refused() as i64);
            events
        };
        if events.is_empty() {
            return;
        }
        self.metrics.count_incident_events(&events);
        let Some(history) = &self.history else {
            return;
        };
        if let Err(error) = history.record_incidents(&events).await {
            self.metrics.count("incident_error");
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                events = events.len(),
                "incident transitions not kept in history yet; sent again with the next"
            );
            self.shared.core().requeue_incident_events(events);
        }
    }

    #[tracing::instrument(name = "aggregator_report", skip_all)]
    async fn close_window(&mut self) -> InspectionReport {
        self.publish_incidents().await;
        let now = Utc::now();
        let changes = self.shared.core().take_alert_changes(now);
        if let Some(store) = &self.store
            && let Err(error) = store.save_alerts(&changes).await
        {
            self.metrics.count("alert_store_error");
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "alert states not stored in Redis; kept for the next report"
            );
            self.shared.core().requeue_alert_changes(changes);
        }
        self.dedup.probe().await;
        self.shared.set_redis_refused(self.dedup.refused());
        let dedup = self.dedup.take_status();
        let delivery = self
            .notifier
            .as_ref()
            .map(Notifier::take_delivery)
            .unwrap_or_default();
        let mut report = self.shared.core().assemble_report(now, dedup, delivery);
        if let Some(max) = self.bus.max_payload() {
            // Room for the protocol's own framing and headers.
            report.fit(max.saturating_sub(4096), |r| r.encoded_len());
            if report.findings_omitted > 0 || report.alerts_omitted > 0 {
                tracing::warn!(
                    findings_omitted = report.findings_omitted,
                    alerts_omitted = report.alerts_omitted,
                    "report trimmed to fit the NATS max payload"
                );
            }
        }
        let bytes = Bytes::from(report.to_bytes());
        let published = match &self.history {
            Some(history) => history.record_report(&report, bytes.clone()).await,
            None => {
                self.bus
                    .publish_event(&self.bus.subjects().reports(), bytes.clone())
                    .await
            }
        };
        if let Err(error) = published {
            self.metrics.count("report_error");
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "report not published on the bus (still served)"
            );
        }
        if let Some(store) = &self.store
            && let Err(error) = store.save_report(&bytes, self.through).await
        {
            self.metrics.count("report_store_error");
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "latest report not stored in Redis (served from memory)"
            );
        }
        self.shared.set_latest(report.clone());
        self.metrics.count("report");
        self.metrics.observe_report(&report);
        tracing::info!(
            findings = report.findings.len(),
            duplicates = report.duplicates_suppressed,
            malformed = report.malformed_messages,
            alerts = report.alerts.len(),
            dedup = %report.dedup_backend,
            "inspection report"
        );
        report
    }
}

/// Publishes alert transitions to the alerts stream, in the order intake
/// made them, whatever has queued up in one pipelined send, so intake never
/// waits for JetStream's acknowledgements; wakes the Alertmanager pusher.
/// Ends when intake drops its sender. A crash loses nothing: transitions
/// not yet stored are made again when the window is replayed.
async fn publish_alerts(
    mut requests: mpsc::Receiver<ToPublisher>,
    bus: Bus,
    shared: Arc<Shared>,
    metrics: AggregatorMetrics,
    push_now: Arc<Notify>,
) {
    let mut flushed = Vec::new();
    while let Some(request) = requests.recv().await {
        let mut alerts = Vec::new();
        for request in
            std::iter::once(request).chain(std::iter::from_fn(|| requests.try_recv().ok()))
        {
            match request {
                ToPublisher::Alerts(more) => alerts.extend(more),
                ToPublisher::Flush(done) => flushed.push(done),
            }
        }
        if alerts.is_empty() {
            for done in flushed.drain(..) {
                let _ = done.send(());
            }
            continue;
        }
        match bus.publish_alerts(&alerts).await {
            Ok(()) => {
                let mut core = shared.core();
                for _ in &alerts {
                    metrics.count("alert");
                    core.alert_published();
                }
            }
            Err(error) => {
                // They stay in the bus outbox and go out with the next publish.
                for _ in &alerts {
                    metrics.count("alert_error");
                }
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    alerts = alerts.len(),
                    "alert transitions not published yet (kept for retry)"
                );
            }
        }
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
        push_now.notify_one();
    }
}

/// What intake asks of the alert publisher.
#[derive(Debug)]
enum ToPublisher {
    /// Transitions to publish, in order.
    Alerts(Vec<Alert>),
    /// Answer once everything asked before is handed to the bus (a report
    /// counts what was published in its window).
    Flush(oneshot::Sender<()>),
}

/// Waits until the alert publisher has handed every earlier transition to
/// the bus.
async fn flush(publisher: &mpsc::Sender<ToPublisher>) {
    let (done, flushed) = oneshot::channel();
    if publisher.send(ToPublisher::Flush(done)).await.is_ok() {
        let _ = flushed.await;
    }
}

/// Pushes the active alerts to Alertmanager every resend interval, and at
/// once when the intake signals a transition, until `shutdown`.
pub fn spawn_pusher(
    notifier: Notifier,
    shared: Arc<Shared>,
    push_now: Arc<Notify>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(notifier.resend_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                _ = push_now.notified() => {}
            }
            let now = Utc::now();
            let alerts = shared.alerts(now);
            for error in notifier.push(&alerts, now).await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "pushing alerts to Alertmanager failed; sent again at the next resend"
                );
            }
        }
    })
}
