//! Durable history: streams that keep what a service published (reports,
//! incident transitions) for a retention and a byte bound, read back newest
//! first. On NATS each is a JetStream stream; on the in-process bus, a
//! bounded ring in memory.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{Bus, BusError, Transport};

/// Most entries the in-process bus keeps per process.
const LOCAL_HISTORY: usize = 10_000;

/// One kept message.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub subject: String,
    /// When the bus stored it.
    pub time: DateTime<Utc>,
    pub payload: Bytes,
}

/// The in-process bus' history ring.
#[derive(Debug, Default)]
pub(crate) struct LocalHistory {
    entries: std::sync::Mutex<std::collections::VecDeque<HistoryEntry>>,
}

impl LocalHistory {
    fn push(&self, entry: HistoryEntry) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.push_back(entry);
        while entries.len() > LOCAL_HISTORY {
            entries.pop_front();
        }
    }
}

/// Which kept messages to read back.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Subjects starting with this.
    pub subject_prefix: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Most entries returned.
    pub limit: usize,
    /// Most messages looked at (newest first) before giving up.
    pub scan: usize,
}

fn setup(what: String) -> impl FnOnce(BoxedError) -> BusError {
    move |source| BusError::Setup { what, source }
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl Bus {
    /// Makes sure history stream `name` keeps `subjects` for `max_age`, in
    /// at most `max_bytes` (oldest dropped first). Nothing to do in-process.
    pub async fn ensure_history(
        &self,
        name: &str,
        subjects: Vec<String>,
        max_age: Duration,
        max_bytes: i64,
    ) -> Result<(), BusError> {
        let Transport::Nats { jetstream, .. } = &self.inner.transport else {
            return Ok(());
        };
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects,
            max_age,
            max_bytes,
            discard: jetstream::stream::DiscardPolicy::Old,
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.inner.replicas,
            allow_direct: true,
            ..Default::default()
        };
        match jetstream.get_stream(name).await {
            Ok(_) => jetstream
                .update_stream(config)
                .await
                .map(|_| ())
                .map_err(|e| setup(format!("history stream {name}"))(Box::new(e))),
            Err(_) => jetstream
                .create_stream(config)
                .await
                .map(|_| ())
                .map_err(|e| setup(format!("history stream {name}"))(Box::new(e))),
        }
    }

    /// Publishes `payload` on `subject` to be kept (JetStream, waiting for
    /// its acknowledgement; `msg_id` drops a repeat within the duplicate
    /// window). In-process: kept in memory and sent as an event.
    pub async fn publish_kept(
        &self,
        subject: &str,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<(), BusError> {
        let failed = |source: BoxedError| BusError::Publish {
            subject: subject.to_string(),
            source,
        };
        match &self.inner.transport {
            Transport::Nats { jetstream, .. } => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", msg_id);
                let ack = jetstream
                    .publish_with_headers(subject.to_string(), headers, payload)
                    .await
                    .map_err(|e| failed(Box::new(e)))?;
                tokio::time::timeout(Duration::from_secs(5), ack)
                    .await
                    .map_err(|_| failed("no acknowledgement within 5s".into()))?
                    .map(|_| ())
                    .map_err(|e| failed(Box::new(e)))
            }
            Transport::Local {
                events, history, ..
            } => {
                history.push(HistoryEntry {
                    subject: subject.to_string(),
                    time: Utc::now(),
                    payload: payload.clone(),
                });
                let _ = events.send(crate::Envelope {
                    subject: subject.to_string(),
                    payload,
                    msg_id: Some(msg_id.to_string()),
                });
                Ok(())
            }
        }
    }

    /// Kept messages of stream `name` matching `query`, newest first.
    pub async fn read_history(
        &self,
        name: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<HistoryEntry>, BusError> {
        let wanted = |entry: &HistoryEntry| {
            entry.subject.starts_with(&query.subject_prefix)
                && query.until.is_none_or(|until| entry.time <= until)
        };
        let too_old = |time: DateTime<Utc>| query.since.is_some_and(|since| time < since);
        match &self.inner.transport {
            Transport::Local { history, .. } => {
                let entries = history
                    .entries
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                Ok(entries
                    .iter()
                    .rev()
                    .take(query.scan)
                    .take_while(|e| !too_old(e.time))
                    .filter(|e| wanted(e))
                    .take(query.limit)
                    .cloned()
                    .collect())
            }
            Transport::Nats { jetstream, .. } => {
                let mut stream = jetstream
                    .get_stream(name)
                    .await
                    .map_err(|e| setup(format!("history stream {name}"))(Box::new(e)))?;
                let state = stream
                    .info()
                    .await
                    .map_err(|e| setup(format!("history stream {name} info"))(Box::new(e)))?
                    .state
                    .clone();
                let mut found = Vec::new();
                if state.messages == 0 {
                    return Ok(found);
                }
                let mut sequence = state.last_sequence;
                let mut scanned = 0;
                while sequence >= state.first_sequence.max(1)
                    && scanned < query.scan
                    && found.len() < query.limit
                {
                    scanned += 1;
                    // A sequence dropped by the byte bound or a purge is a gap.
                    if let Ok(message) = stream.direct_get(sequence).await {
                        let time = DateTime::from_timestamp(
                            message.time.unix_timestamp(),
                            message.time.nanosecond(),
                        )
                        .unwrap_or_default();
                        if too_old(time) {
                            break;
                        }
                        let entry = HistoryEntry {
                            subject: message.subject.to_string(),
                            time,
                            payload: message.payload,
                        };
                        if wanted(&entry) {
                            found.push(entry);
                        }
                    }
                    sequence -= 1;
                }
                Ok(found)
            }
        }
    }
}
