//! The bus between inspector services.
//!
//! Sensors publish findings and run summaries *durably*: over NATS they go
//! into a JetStream stream (with `Nats-Msg-Id`, so a retried publish inside
//! the duplicate window is stored once) and the aggregator reads them with a
//! durable pull consumer, so nothing published while it is down is lost.
//! Reports and alerts are *events* on core NATS. The in-process transport
//! carries the same protobuf bytes over channels, for `inspector demo`.
//!
//! A publish that fails (NATS away, no ack) stays queued in order in the
//! [`Bus`]'s outbox and is retried before the next publish or on
//! [`Bus::flush_pending`]; nothing is dropped unless the outbox overflows
//! (counted in [`Bus::dropped`] and logged).

mod config;
pub mod history;
pub mod spool;
mod subjects;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull;
use bytes::Bytes;
use futures::StreamExt;
use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, Finding, SensorRun};
use tokio::sync::{Mutex, broadcast, mpsc};

pub use config::{NatsConfig, NatsTlsConfig};
pub use subjects::Subjects;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("JetStream set-up failed ({what})")]
    Setup {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("publish to {subject} failed")]
    Publish {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("reading the findings consumer failed ({what})")]
    Consume {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("{0} is not available on the in-process bus")]
    Unsupported(&'static str),
    #[error("reading the state of consumer {durable} failed")]
    ConsumerInfo {
        durable: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Creates the file-backed stream `name` over `subjects` if it is missing.
async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &NatsConfig,
    name: &str,
    subjects: Vec<String>,
    max_age: Duration,
) -> Result<(), BusError> {
    jetstream
        .get_or_create_stream(jetstream::stream::Config {
            name: name.to_string(),
            subjects,
            duplicate_window: config.duplicate_window,
            max_age,
            storage: jetstream::stream::StorageType::File,
            num_replicas: config.stream_replicas,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| BusError::Setup {
            what: format!("stream {name}"),
            source: Box::new(e),
        })
}

/// How long publishing a core-NATS event waits for it to leave the process.
const EVENT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Most durable messages sent before waiting for their acknowledgements.
const PIPELINE: usize = 256;

/// The cause of a bus error, kept whole (`#[source]`), whatever its type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What JetStream says of a durable consumer, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerState {
    /// Messages in the stream not yet delivered to the consumer.
    pub pending: u64,
    /// Delivered, not yet acknowledged.
    pub ack_pending: u64,
    /// Delivered more than once and not yet acknowledged.
    pub redelivered: u64,
    /// Stream sequence of the last message delivered to the consumer.
    pub delivered_sequence: u64,
}

/// One message to publish or that was received.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub subject: String,
    pub payload: Bytes,
    /// JetStream de-duplication id (`Nats-Msg-Id`).
    pub msg_id: Option<String>,
}

// One per process, behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Transport {
    Nats {
        client: async_nats::Client,
        jetstream: jetstream::Context,
        stream: String,
    },
    Local {
        durable_tx: mpsc::UnboundedSender<Envelope>,
        durable_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Envelope>>>,
        events: broadcast::Sender<Envelope>,
        history: history::LocalHistory,
    },
}

struct Inner {
    transport: Transport,
    subjects: Subjects,
    outbox: Mutex<VecDeque<Envelope>>,
    max_pending: usize,
    dropped: AtomicU64,
    /// Where unsent messages go at shutdown (and come back from at start).
    spool: Option<std::path::PathBuf>,
    /// How many copies each stream keeps (`stream_replicas`).
    replicas: usize,
}

/// A handle on the bus; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.inner.transport {
            Transport::Nats { stream, .. } => format!("nats (stream {stream})"),
            Transport::Local { .. } => "in-process".to_string(),
        };
        f.debug_struct("Bus")
            .field("transport", &transport)
            .field("subjects", &self.inner.subjects)
            .finish()
    }
}

impl Bus {
    /// Connects to NATS and makes sure the durable stream exists.
    /// `client_name` shows in the server's connection list.
    pub async fn connect(config: &NatsConfig, client_name: &str) -> Result<Bus, BusError> {
        let client = config
            .connect_options(client_name)
            .await?
            .connect(config.servers())
            .await
            .map_err(|e| BusError::Connect {
                url: inspector_domain::redact_url(&config.url),
                source: Box::new(e),
            })?;
        let jetstream = jetstream::new(client.clone());
        let subjects = Subjects::new(&config.subject_prefix);
        let stream = config.stream_name();
        // Findings and run summaries (read by the aggregator), and alert
        // transitions (read by anyone), each kept `stream_replicas` times.
        ensure_stream(
            &jetstream,
            config,
            &stream,
            subjects.durable_wildcards(),
            config.max_age,
        )
        .await?;
        ensure_stream(
            &jetstream,
            config,
            &config.alert_stream_name(),
            vec![subjects.alert_wildcard()],
            config.alert_max_age,
        )
        .await?;
        let mut bus = Bus::with_transport(
            Transport::Nats {
                client,
                jetstream,
                stream,
            },
            subjects,
        );
        if let Some(inner) = Arc::get_mut(&mut bus.inner) {
            inner.replicas = config.stream_replicas;
        }
        if let Some(path) = &config.spool_path {
            bus.restore_spool(path.clone()).await;
        }
        Ok(bus)
    }

    /// Takes what the last run spooled (sent first, before anything new)
    /// and spools to `path` from now on.
    async fn restore_spool(&mut self, path: std::path::PathBuf) {
        match spool::read(&path) {
            Ok(spooled) if !spooled.is_empty() => {
                tracing::info!(
                    messages = spooled.len(),
                    path = %path.display(),
                    "sending what the last run spooled"
                );
                let mut outbox = self.inner.outbox.lock().await;
                for envelope in spooled.into_iter().rev() {
                    outbox.push_front(envelope);
                }
            }
            Ok(_) => {}
            Err(error) => {
                // Keep it for a person to look at; never crash on it.
                let aside = path.with_extension("corrupt");
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    path = %path.display(),
                    aside = %aside.display(),
                    "unreadable outbox spool set aside"
                );
                let _ = std::fs::rename(&path, &aside);
            }
        }
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.spool = Some(path.clone());
        }
        // The spooled messages now live in memory; an empty spool file is
        // written again at the next shutdown if anything is left.
        let _ = std::fs::remove_file(&path);
        if let Err(error) = self.flush_pending().await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "spooled messages not sent yet; kept for retry"
            );
        }
    }

    /// Connects like [`Bus::connect`], retrying with capped exponential
    /// backoff until it succeeds or `shutdown` is cancelled (`None`), so a
    /// service started before NATS waits instead of crash-looping.
    pub async fn connect_with_retry(
        config: &NatsConfig,
        client_name: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<Bus> {
        let mut delay = Duration::from_millis(200);
        loop {
            match Bus::connect(config, client_name).await {
                Ok(bus) => return Some(bus),
                Err(error) => {
                    tracing::error!(error = &error as &dyn std::error::Error, retry_in = ?delay, "NATS not available yet");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// An in-process bus (same subjects and bytes, channels instead of NATS).
    pub fn in_process(subject_prefix: &str) -> Bus {
        let (durable_tx, durable_rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(1024);
        Bus::with_transport(
            Transport::Local {
                durable_tx,
                durable_rx: std::sync::Mutex::new(Some(durable_rx)),
                events,
                history: history::LocalHistory::default(),
            },
            Subjects::new(subject_prefix),
        )
    }

    fn with_transport(transport: Transport, subjects: Subjects) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                transport,
                subjects,
                outbox: Mutex::new(VecDeque::new()),
                max_pending: 100_000,
                dropped: AtomicU64::new(0),
                spool: None,
                replicas: 1,
            }),
        }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.inner.subjects
    }

    /// The largest message the NATS server takes (its `max_payload`); none
    /// on the in-process bus.
    pub fn max_payload(&self) -> Option<usize> {
        match &self.inner.transport {
            Transport::Nats { client, .. } => Some(client.max_payload()),
            Transport::Local { .. } => None,
        }
    }

    /// The NATS client, when on NATS (for request-reply serving).
    pub fn nats_client(&self) -> Option<&async_nats::Client> {
        match &self.inner.transport {
            Transport::Nats { client, .. } => Some(client),
            Transport::Local { .. } => None,
        }
    }

    /// Publishes a finding durably with its id as the de-duplication id.
    pub async fn publish_finding(&self, finding: &Finding) -> Result<(), BusError> {
        self.publish_durable(Envelope {
            subject: self.inner.subjects.findings(finding.kind()),
            payload: finding.to_bytes().into(),
            msg_id: Some(finding.id.clone()),
        })
        .await
    }

    /// Publishes an alert transition: durably in the alerts stream on NATS
    /// (`Nats-Msg-Id` = the transition's id, so a retry is stored once);
    /// as an event on the in-process bus.
    pub async fn publish_alert(&self, alert: &Alert) -> Result<(), BusError> {
        self.publish_alerts(std::slice::from_ref(alert)).await
    }

    /// Publishes alert transitions in order, pipelined (one round trip for
    /// many), as [`Bus::publish_alert`] does each.
    pub async fn publish_alerts(&self, alerts: &[Alert]) -> Result<(), BusError> {
        let envelopes = alerts.iter().map(|alert| Envelope {
            subject: self.inner.subjects.alert_event(alert),
            payload: alert.to_bytes().into(),
            msg_id: Some(alert.event_id()),
        });
        match &self.inner.transport {
            Transport::Nats { .. } => self.publish_durable_many(envelopes).await,
            Transport::Local { events, .. } => {
                for envelope in envelopes {
                    let _ = events.send(envelope);
                }
                Ok(())
            }
        }
    }

    /// Publishes a sensor's run summary durably.
    pub async fn publish_run(&self, run: &SensorRun) -> Result<(), BusError> {
        let msg_id = format!(
            "run|{}|{}|{}",
            run.sensor,
            run.instance,
            run.started_at.timestamp_millis()
        );
        self.publish_durable(Envelope {
            subject: self.inner.subjects.runs(&run.sensor),
            payload: run.to_bytes().into(),
            msg_id: Some(msg_id),
        })
        .await
    }

    /// Queues `envelope` behind anything still pending and publishes the
    /// queue in order. On failure the unsent messages stay queued.
    pub async fn publish_durable(&self, envelope: Envelope) -> Result<(), BusError> {
        self.publish_durable_many(std::iter::once(envelope)).await
    }

    /// Queues `envelopes` behind anything still pending and publishes the
    /// queue in order, pipelined. On failure the unsent messages stay queued.
    pub async fn publish_durable_many(
        &self,
        envelopes: impl IntoIterator<Item = Envelope>,
    ) -> Result<(), BusError> {
        let mut outbox = self.inner.outbox.lock().await;
        for envelope in envelopes {
            if outbox.len() >= self.inner.max_pending
                && let Some(lost) = outbox.pop_front()
            {
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(subject = %lost.subject, max_pending = self.inner.max_pending,
                    "outbox full: dropped the oldest unsent message");
            }
            outbox.push_back(envelope);
        }
        self.drain(&mut outbox).await
    }

    /// Retries whatever is still queued from failed publishes.
    pub async fn flush_pending(&self) -> Result<(), BusError> {
        let mut outbox = self.inner.outbox.lock().await;
        self.drain(&mut outbox).await
    }

    /// At shutdown: retries the outbox for at most `timeout`, then writes
    /// what is still unsent to the spool file (`nats.spool_path`) so the next
    /// start sends it, and logs what happened. Returns the messages left
    /// unsent.
    pub async fn drain_outbox(&self, timeout: Duration) -> usize {
        let drained = tokio::time::timeout(timeout, self.flush_pending()).await;
        let pending = self.pending().await;
        if let Some(path) = &self.inner.spool {
            let unsent: Vec<Envelope> = self.inner.outbox.lock().await.iter().cloned().collect();
            match spool::write(path, &unsent) {
                Ok(()) if unsent.is_empty() => {}
                Ok(()) => tracing::warn!(
                    pending,
                    path = %path.display(),
                    "unsent messages spooled; the next start sends them"
                ),
                Err(error) => tracing::error!(
                    error = &error as &dyn std::error::Error,
                    pending,
                    path = %path.display(),
                    "could not spool the unsent messages; they are lost"
                ),
            }
        }
        match drained {
            Ok(Ok(())) => tracing::info!("outbox drained"),
            Ok(Err(error)) => tracing::error!(
                error = &error as &dyn std::error::Error,
                pending,
                "shutdown with unsent messages"
            ),
            Err(_) => tracing::error!(pending, "outbox drain timed out"),
        }
        pending
    }

    /// Messages waiting in the outbox.
    pub async fn pending(&self) -> usize {
        self.inner.outbox.lock().await.len()
    }

    /// Messages dropped because the outbox overflowed.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Sends the outbox front to back, up to [`PIPELINE`] messages before
    /// waiting for their acknowledgements; only acknowledged messages leave
    /// the outbox (a resend after a failure is deduplicated by
    /// `Nats-Msg-Id`).
    async fn drain(&self, outbox: &mut VecDeque<Envelope>) -> Result<(), BusError> {
        while !outbox.is_empty() {
            let mut acks = Vec::with_capacity(outbox.len().min(PIPELINE));
            for envelope in outbox.iter().take(PIPELINE) {
                acks.push(self.send_durable(envelope).await?);
            }
            for (ack, envelope) in acks.into_iter().zip(outbox.iter()) {
                if let Some(ack) = ack {
                    ack.await.map_err(|e| BusError::Publish {
                        subject: envelope.subject.clone(),
                        source: Box::new(e),
                    })?;
                }
            }
            let sent = outbox.len().min(PIPELINE);
            outbox.drain(..sent);
        }
        Ok(())
    }

    /// Sends one message; on NATS returns the acknowledgement to wait for.
    async fn send_durable(
        &self,
        envelope: &Envelope,
    ) -> Result<Option<jetstream::context::PublishAckFuture>, BusError> {
        let failed = |source: BoxError| BusError::Publish {
            subject: envelope.subject.clone(),
            source,
        };
        match &self.inner.transport {
            Transport::Nats { jetstream, .. } => {
                let mut headers = async_nats::HeaderMap::new();
                if let Some(id) = &envelope.msg_id {
                    headers.insert("Nats-Msg-Id", id.as_str());
                }
                let ack = jetstream
                    .publish_with_headers(
                        envelope.subject.clone(),
                        headers,
                        envelope.payload.clone(),
                    )
                    .await
                    .map_err(|e| failed(Box::new(e)))?;
                Ok(Some(ack))
            }
            Transport::Local { durable_tx, .. } => durable_tx
                .send(envelope.clone())
                .map(|()| None)
                .map_err(|_| failed("the in-process consumer is gone".into())),
        }
    }

    /// Publishes a non-durable event (report, alert) on core NATS.
    pub async fn publish_event(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        let failed = |source: BoxError| BusError::Publish {
            subject: subject.to_string(),
            source,
        };
        match &self.inner.transport {
            Transport::Nats { client, .. } => {
                client
                    .publish(subject.to_string(), payload)
                    .await
                    .map_err(|e| failed(Box::new(e)))?;
                // Make sure it left this process before reporting success,
                // but never wait on a server that is gone (shutdown must end).
                match tokio::time::timeout(EVENT_FLUSH_TIMEOUT, client.flush()).await {
                    Ok(flushed) => flushed.map_err(|e| failed(Box::new(e))),
                    Err(_) => Err(failed(
                        format!("not flushed within {EVENT_FLUSH_TIMEOUT:?}").into(),
                    )),
                }
            }
            Transport::Local { events, .. } => {
                // No subscriber is fine: events are fire-and-forget.
                let _ = events.send(Envelope {
                    subject: subject.to_string(),
                    payload,
                    msg_id: None,
                });
                Ok(())
            }
        }
    }

    /// Events published on the in-process bus (the demo prints them).
    pub fn local_events(&self) -> Result<broadcast::Receiver<Envelope>, BusError> {
        match &self.inner.transport {
            Transport::Local { events, .. } => Ok(events.subscribe()),
            Transport::Nats { .. } => Err(BusError::Unsupported("local_events on NATS")),
        }
    }

    /// The state of durable consumer `durable` (NATS only).
    pub async fn consumer_state(&self, durable: &str) -> Result<ConsumerState, BusError> {
        let Transport::Nats {
            jetstream, stream, ..
        } = &self.inner.transport
        else {
            return Err(BusError::Unsupported("consumer state"));
        };
        let error = |source: Box<dyn std::error::Error + Send + Sync>| BusError::ConsumerInfo {
            durable: durable.to_string(),
            source,
        };
        let stream = jetstream
            .get_stream(stream)
            .await
            .map_err(|e| error(Box::new(e)))?;
        let info = stream
            .consumer_info(durable)
            .await
            .map_err(|e| error(Box::new(e)))?;
        Ok(ConsumerState {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            redelivered: info.num_redelivered as u64,
            delivered_sequence: info.delivered.stream_sequence,
        })
    }

    /// Opens the durable intake of findings and run summaries. On NATS,
    /// replicas giving the same `durable` name share the consumer (each
    /// message goes to one of them); a message not acknowledged within
    /// `ack_wait` is redelivered, and at most `max_ack_pending` are held
    /// unacknowledged. On the in-process bus it can be opened once.
    pub async fn inbox(
        &self,
        durable: &str,
        ack_wait: Duration,
        max_ack_pending: i64,
    ) -> Result<Inbox, BusError> {
        match &self.inner.transport {
            Transport::Nats {
                jetstream, stream, ..
            } => {
                let setup = |what: &str, e: BoxError| BusError::Setup {
                    what: what.to_string(),
                    source: e,
                };
                let stream = get_stream(jetstream, stream).await?;
                let consumer: jetstream::consumer::PullConsumer = stream
                    .get_or_create_consumer(
                        durable,
                        pull::Config {
                            durable_name: Some(durable.to_string()),
                            ack_policy: jetstream::consumer::AckPolicy::Explicit,
                            ack_wait,
                            deliver_policy: jetstream::consumer::DeliverPolicy::All,
                            max_ack_pending,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| setup(&format!("consumer {durable}"), Box::new(e)))?;
                let messages = pull_messages(&consumer)
                    .await
                    .map_err(|e| setup("consumer messages", Box::new(e)))?;
                Ok(Inbox {
                    subjects: self.inner.subjects.clone(),
                    source: InboxSource::Nats(Box::new(NatsInbox { consumer, messages })),
                    deferred_error: None,
                })
            }
            Transport::Local { durable_rx, .. } => {
                let receiver = durable_rx
                    .lock()
                    .map_err(|_| BusError::Unsupported("a poisoned in-process inbox"))?
                    .take()
                    .ok_or(BusError::Unsupported("a second in-process inbox"))?;
                Ok(Inbox {
                    subjects: self.inner.subjects.clone(),
                    source: InboxSource::Local(receiver),
                    deferred_error: None,
                })
            }
        }
    }
}

impl Bus {
    /// Reads the durable subjects again from stream sequence `after + 1`
    /// through `through` (NATS only), without touching any durable
    /// consumer: an ephemeral ordered consumer, ended at `through`. The
    /// aggregator rebuilds a window it had acknowledged but not reported
    /// yet with it. Deliveries from it need no acknowledgement.
    pub async fn replay(&self, after: u64, through: u64) -> Result<Inbox, BusError> {
        let Transport::Nats {
            jetstream, stream, ..
        } = &self.inner.transport
        else {
            return Err(BusError::Unsupported("replay on the in-process bus"));
        };
        let setup = |what: &str, e: BoxError| BusError::Setup {
            what: what.to_string(),
            source: e,
        };
        let stream = get_stream(jetstream, stream).await?;
        let source = if through <= after {
            InboxSource::Done
        } else {
            let consumer = stream
                .create_consumer(pull::OrderedConfig {
                    filter_subjects: self.inner.subjects.durable_wildcards(),
                    deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| setup("replay consumer", Box::new(e)))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| setup("replay messages", Box::new(e)))?;
            InboxSource::Replay {
                messages: Box::new(messages),
                through,
            }
        };
        Ok(Inbox {
            subjects: self.inner.subjects.clone(),
            source,
            deferred_error: None,
        })
    }
}

/// Most alert transitions [`Bus::recent_alerts`] reads.
pub const MAX_RECENT_ALERTS: usize = 100_000;

/// One alert transition read back from the alerts stream.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptAlert {
    pub alert: Alert,
    /// When the stream stored it (about when the aggregator decided it).
    pub stored_at: chrono::DateTime<chrono::Utc>,
}

impl Bus {
    /// The alert transitions the alerts stream holds from `since` on, oldest
    /// first (NATS only; the in-process bus keeps none), at most
    /// [`MAX_RECENT_ALERTS`]; undecodable ones are skipped and counted in
    /// the second value. Read with an ephemeral ordered consumer that stops
    /// at the stream's end as of the call.
    pub async fn recent_alerts(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        alert_stream: &str,
    ) -> Result<(Vec<KeptAlert>, usize), BusError> {
        let Transport::Nats { jetstream, .. } = &self.inner.transport else {
            return Ok((Vec::new(), 0));
        };
        let setup = |what: &str, e: BoxError| BusError::Setup {
            what: what.to_string(),
            source: e,
        };
        let mut stream = get_stream(jetstream, alert_stream).await?;
        let last = stream
            .info()
            .await
            .map_err(|e| setup("alerts stream info", Box::new(e)))?
            .state
            .last_sequence;
        let mut kept = Vec::new();
        let mut malformed = 0;
        if last == 0 {
            return Ok((kept, malformed));
        }
        let start_time = time::OffsetDateTime::from_unix_timestamp(since.timestamp())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartTime { start_time },
                ..Default::default()
            })
            .await
            .map_err(|e| setup("alerts read consumer", Box::new(e)))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| setup("alerts read messages", Box::new(e)))?;
        while kept.len() < MAX_RECENT_ALERTS {
            // Nothing at or after `since`: the consumer waits; the end is near.
            let next = tokio::time::timeout(Duration::from_secs(2), messages.next()).await;
            let Ok(Some(message)) = next else {
                break;
            };
            let message = message.map_err(|e| setup("alerts read", Box::new(e)))?;
            let Ok(info) = message.info() else {
                malformed += 1;
                continue;
            };
            let sequence = info.stream_sequence;
            let stored_at = chrono::DateTime::from_timestamp(
                info.published.unix_timestamp(),
                info.published.nanosecond(),
            )
            .unwrap_or(since);
            match Alert::from_bytes(&message.payload) {
                Ok(alert) => kept.push(KeptAlert { alert, stored_at }),
                Err(_) => malformed += 1,
            }
            if sequence >= last {
                break;
            }
        }
        Ok((kept, malformed))
    }
}

/// The aggregator's intake of findings and run summaries.
pub struct Inbox {
    /// Which subjects carry findings and which run summaries.
    subjects: Subjects,
    source: InboxSource,
    /// An error met while a batch was being filled, returned by the next call.
    deferred_error: Option<BusError>,
}

enum InboxSource {
    Nats(Box<NatsInbox>),
    Local(mpsc::UnboundedReceiver<Envelope>),
    /// A bounded re-read of the stream (see [`Bus::replay`]).
    Replay {
        messages: Box<pull::Ordered>,
        through: u64,
    },
    /// A replay that reached its end.
    Done,
}

/// A message from the durable intake, decoded once, here at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Finding(Box<Finding>),
    Run(SensorRun),
    /// Not a valid message (bad protobuf, invalid values, unknown subject).
    Malformed {
        reason: String,
    },
}

impl Incoming {
    /// Decodes `payload` by what `subject` carries.
    pub fn decode(subjects: &Subjects, subject: &str, payload: &[u8]) -> Incoming {
        let malformed = |reason: String| Incoming::Malformed { reason };
        if subjects.is_finding(subject) {
            match Finding::from_bytes(payload) {
                Ok(finding) => Incoming::Finding(Box::new(finding)),
                Err(error) => malformed(error.to_string()),
            }
        } else if subjects.is_run(subject) {
            match SensorRun::from_bytes(payload) {
                Ok(run) => Incoming::Run(run),
                Err(error) => malformed(error.to_string()),
            }
        } else {
            malformed(format!("unexpected subject {subject}"))
        }
    }
}

/// The durable stream's handle.
async fn get_stream(
    jetstream: &jetstream::Context,
    name: &str,
) -> Result<jetstream::stream::Stream, BusError> {
    jetstream
        .get_stream(name)
        .await
        .map_err(|e| BusError::Setup {
            what: "get stream".to_string(),
            source: Box::new(e),
        })
}

/// Messages per pull request, and the most the aggregator handles in one
/// step: one pull fills one step.
pub const PULL_BATCH: usize = 512;

async fn pull_messages(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<pull::Stream, jetstream::consumer::StreamError> {
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .messages()
        .await
}

/// A durable JetStream pull consumer and its message stream.
#[allow(missing_debug_implementations)] // the stream has no Debug; Inbox's says enough
pub struct NatsInbox {
    consumer: jetstream::consumer::PullConsumer,
    messages: pull::Stream,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.source {
            InboxSource::Nats(_) => "Inbox(nats)",
            InboxSource::Local(_) => "Inbox(in-process)",
            InboxSource::Replay { .. } | InboxSource::Done => "Inbox(replay)",
        })
    }
}

impl Inbox {
    /// The next message, and whatever else has already arrived, up to `max`
    /// in all, without waiting for more: intake handles a batch with one
    /// round of dedup requests and one step of the core. `None` and errors
    /// as for [`Inbox::next`].
    pub async fn next_batch(&mut self, max: usize) -> Option<Result<Vec<Delivery>, BusError>> {
        let first = match self.next().await? {
            Ok(delivery) => delivery,
            Err(error) => return Some(Err(error)),
        };
        let mut batch = vec![first];
        while batch.len() < max {
            use futures::FutureExt;
            match self.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(delivery),
                Some(Some(Err(error))) => {
                    self.deferred_error = Some(error);
                    break;
                }
                Some(None) | None => break,
            }
        }
        Some(Ok(batch))
    }

    /// The next message. `None` only when the in-process bus is closed or a
    /// replay reached its end; on NATS a transient error is returned as
    /// `Some(Err)` and the next call carries on (re-opening the message
    /// stream if it ended).
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        if let Some(error) = self.deferred_error.take() {
            return Some(Err(error));
        }
        let subjects = &self.subjects;
        match &mut self.source {
            InboxSource::Done => None,
            InboxSource::Replay { messages, through } => {
                let through = *through;
                match messages.next().await {
                    Some(Ok(message)) => {
                        let sequence = message.info().ok().map(|info| info.stream_sequence);
                        if sequence.is_none_or(|sequence| sequence >= through) {
                            self.source = InboxSource::Done;
                        }
                        Some(Ok(Delivery {
                            incoming: Incoming::decode(
                                subjects,
                                &message.subject,
                                &message.payload,
                            ),
                            bytes: message.payload.len(),
                            subject: message.subject.to_string(),
                            sequence,
                            // An ordered consumer takes no acknowledgements.
                            message: None,
                        }))
                    }
                    Some(Err(e)) => Some(Err(BusError::Consume {
                        what: "replay",
                        source: Box::new(e),
                    })),
                    None => {
                        self.source = InboxSource::Done;
                        None
                    }
                }
            }
            InboxSource::Local(receiver) => receiver.recv().await.map(|envelope| {
                Ok(Delivery {
                    incoming: Incoming::decode(subjects, &envelope.subject, &envelope.payload),
                    bytes: envelope.payload.len(),
                    subject: envelope.subject,
                    sequence: None,
                    message: None,
                })
            }),
            InboxSource::Nats(inbox) => loop {
                match inbox.messages.next().await {
                    Some(Ok(message)) => {
                        return Some(Ok(Delivery {
                            incoming: Incoming::decode(
                                subjects,
                                &message.subject,
                                &message.payload,
                            ),
                            bytes: message.payload.len(),
                            subject: message.subject.to_string(),
                            sequence: message.info().ok().map(|info| info.stream_sequence),
                            message: Some(message),
                        }));
                    }
                    Some(Err(e)) => {
                        return Some(Err(BusError::Consume {
                            what: "next message",
                            source: Box::new(e),
                        }));
                    }
                    None => match pull_messages(&inbox.consumer).await {
                        Ok(fresh) => inbox.messages = fresh,
                        Err(e) => {
                            return Some(Err(BusError::Consume {
                                what: "reopening the message stream",
                                source: Box::new(e),
                            }));
                        }
                    },
                }
            },
        }
    }
}

/// One received message, decoded; acknowledge it once handled.
#[derive(Debug)]
pub struct Delivery {
    pub subject: String,
    /// Size of the encoded message.
    pub bytes: usize,
    pub incoming: Incoming,
    /// Its sequence in the JetStream stream (none on the in-process bus).
    pub sequence: Option<u64>,
    message: Option<jetstream::Message>,
}

impl Delivery {
    /// Done with it: JetStream will not deliver it again.
    pub async fn ack(self) -> Result<(), BusError> {
        if let Some(message) = self.message {
            message.ack().await.map_err(|source| BusError::Consume {
                what: "ack",
                source,
            })?;
        }
        Ok(())
    }

    /// It can never be handled (garbage): stop redelivering it.
    pub async fn reject(self) -> Result<(), BusError> {
        if let Some(message) = self.message {
            message
                .ack_with(jetstream::AckKind::Term)
                .await
                .map_err(|source| BusError::Consume {
                    what: "terminate",
                    source,
                })?;
        }
        Ok(())
    }
}
