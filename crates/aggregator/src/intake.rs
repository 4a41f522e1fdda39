//! The intake loop: takes decoded messages from the durable consumer, asks
//! the dedup store for a verdict (no lock held while Redis answers), applies
//! message and verdict to the core in one short synchronous step, publishes
//! the alert transitions that step returns, and closes a report every
//! interval.
//!
//! Messages are acknowledged to JetStream only once the report that contains
//! them is assembled: an aggregator that dies mid-window gets them
//! redelivered on restart, and a graceful stop closes a last report first.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use inspector_bus::{Bus, Delivery, Inbox, Incoming};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, InspectionReport};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::alertmanager::Notifier;
use crate::core::Counted;
use crate::dedup::{Deduplicator, Verdict};
use crate::metrics::AggregatorMetrics;
use crate::state::Shared;
use crate::store::Store;

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
}

impl Intake {
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
                        tracing::warn!(error = &error as &dyn std::error::Error, "findings consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
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

    #[tracing::instrument(name = "aggregator_message", skip_all, fields(subject = %delivery.subject, bytes = delivery.bytes))]
    async fn take(&mut self, delivery: Delivery, held: &mut Vec<Delivery>) {
        self.shared.count_processed();
        let now = Utc::now();
        let transitions = match &delivery.incoming {
            Incoming::Malformed { reason } => {
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
                return;
            }
            Incoming::Finding(finding) => {
                let counted = self.shared.core().is_counted(&finding.id);
                // The verdict is asked without the core's lock: a slow Redis
                // never stalls the query handlers.
                let verdict = if counted {
                    Verdict::Redelivery
                } else {
                    self.dedup
                        .check(&finding.dedup_key(), &finding.id, now)
                        .await
                };
                let outcome = self
                    .shared
                    .core()
                    .apply_finding((**finding).clone(), verdict, now);
                match outcome.counted {
                    Counted::New => self.metrics.new_finding(finding),
                    Counted::Duplicate => self.metrics.count("duplicate"),
                    Counted::AlreadyCounted => {}
                }
                outcome.transition.into_iter().collect()
            }
            Incoming::Run(run) => {
                self.metrics.count("run");
                self.shared.core().apply_run(run.clone(), now)
            }
        };
        for alert in transitions {
            self.publish_transition(&alert).await;
        }
        held.push(delivery);
    }

    /// Publishes one alert transition to the alerts stream and wakes the
    /// Alertmanager pusher; shadow alerts go nowhere.
    async fn publish_transition(&self, alert: &Alert) {
        tracing::info!(key = %alert.key, state = alert.status.as_str(), shadow = alert.shadow, "alert transition");
        if alert.shadow {
            return;
        }
        match self.bus.publish_alert(alert).await {
            Ok(()) => {
                self.metrics.count("alert");
                self.shared.core().alert_published();
            }
            Err(error) => {
                // It stays in the bus outbox and goes out with the next publish.
                self.metrics.count("alert_error");
                tracing::error!(error = &error as &dyn std::error::Error, key = %alert.key, "alert transition not published yet (kept for retry)");
            }
        }
        self.push_now.notify_one();
    }

    #[tracing::instrument(name = "aggregator_report", skip_all, fields(held = held.len()))]
    async fn close_window(&mut self, held: &mut Vec<Delivery>) -> InspectionReport {
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
        if let Err(error) = self
            .bus
            .publish_event(&self.bus.subjects().reports(), bytes.clone())
            .await
        {
            self.metrics.count("report_error");
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "report not published on the bus (still served)"
            );
        }
        if let Some(store) = &self.store
            && let Err(error) = store.save_report(&bytes).await
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
        for delivery in held.drain(..) {
            if let Err(error) = delivery.ack().await {
                self.metrics.count("ack_error");
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "ack failed; JetStream will redeliver (deduplicated)"
                );
            }
        }
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
