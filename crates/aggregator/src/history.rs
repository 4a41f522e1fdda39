//! History of reports and incidents, kept in JetStream (the streams
//! `<PREFIX>_REPORTS` and `<PREFIX>_INCIDENTS`, bounded by age and bytes):
//! written as the intake closes windows and incidents change, read back
//! newest first for `/v1/reports` and `/v1/incidents`, and read at start so
//! a restarted (or second) aggregator carries on the open incidents.

use std::collections::HashSet;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use inspector_bus::history::HistoryQuery;
use inspector_bus::{Bus, BusError, NatsConfig};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Incident, InspectionReport};

use crate::config::HistoryConfig;
use crate::incidents::IncidentEvent;

/// Most messages looked at to answer one history query.
const MAX_SCAN: usize = 20_000;
/// Most entries one history query returns.
pub const MAX_LIMIT: usize = 1000;

/// The history streams of one deployment.
#[derive(Debug, Clone)]
pub struct History {
    bus: Bus,
    reports: String,
    incidents: String,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// `open`, `resolved` or `merged`.
    pub state: Option<String>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl IncidentFilter {
    /// Whether `incident` passes (the time bounds apply to its span).
    pub fn admits(&self, incident: &Incident) -> bool {
        let scopes =
            || std::iter::once(&incident.scope).chain(incident.members.iter().map(|m| &m.scope));
        self.state
            .as_deref()
            .is_none_or(|s| s == incident.state.as_str())
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| scopes().any(|s| s.namespace() == Some(ns)))
            && self
                .workload
                .as_deref()
                .is_none_or(|w| scopes().any(|s| s.workload() == Some(w)))
            && self.since.is_none_or(|since| incident.last_seen >= since)
            && self.until.is_none_or(|until| incident.first_seen <= until)
    }
}

impl History {
    /// Makes sure both streams exist with `config`'s bounds.
    pub async fn open(
        bus: Bus,
        nats: &NatsConfig,
        config: &HistoryConfig,
    ) -> Result<Self, BusError> {
        let history = History {
            reports: nats.report_stream_name(),
            incidents: nats.incident_stream_name(),
            bus,
        };
        let subjects = history.bus.subjects().clone();
        history
            .bus
            .ensure_history(
                &history.reports,
                vec![subjects.reports()],
                config.retention,
                config.max_bytes,
            )
            .await?;
        history
            .bus
            .ensure_history(
                &history.incidents,
                vec![subjects.incident_wildcard()],
                config.retention,
                config.max_bytes,
            )
            .await?;
        Ok(history)
    }

    /// Publishes a report on `<prefix>.reports`, kept in the reports stream.
    pub async fn record_report(
        &self,
        report: &InspectionReport,
        bytes: Bytes,
    ) -> Result<(), BusError> {
        let id = format!(
            "report|{}|{}",
            report.aggregator_instance,
            report.window_end.timestamp_millis()
        );
        self.bus
            .publish_kept(&self.bus.subjects().reports(), bytes, &id)
            .await
    }

    /// Publishes incident transitions, in order.
    pub async fn record_incidents(&self, events: &[IncidentEvent]) -> Result<(), BusError> {
        for event in events {
            let subject = self
                .bus
                .subjects()
                .incident_event(event.transition.as_str());
            self.bus
                .publish_kept(
                    &subject,
                    event.incident.to_bytes().into(),
                    &event.incident.event_id(),
                )
                .await?;
        }
        Ok(())
    }

    /// Reports in `[since, until]`, newest first, at most `limit`.
    pub async fn reports(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<InspectionReport>, BusError> {
        let entries = self
            .bus
            .read_history(
                &self.reports,
                &HistoryQuery {
                    subject_prefix: self.bus.subjects().reports(),
                    since,
                    until,
                    limit: limit.min(MAX_LIMIT),
                    scan: MAX_SCAN,
                },
            )
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|entry| match InspectionReport::from_bytes(&entry.payload) {
                Ok(report) => Some(report),
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "undecodable report in history skipped"
                    );
                    None
                }
            })
            .collect())
    }

    /// The latest state of each incident in history (newest first) that
    /// `filter` admits.
    pub async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, BusError> {
        let entries = self
            .bus
            .read_history(
                &self.incidents,
                &HistoryQuery {
                    subject_prefix: self
                        .bus
                        .subjects()
                        .incident_wildcard()
                        .trim_end_matches('>')
                        .to_string(),
                    // An incident's last event can be older than its span's
                    // start by no more than the span: filter after decoding.
                    since: None,
                    until: None,
                    limit: MAX_SCAN,
                    scan: MAX_SCAN,
                },
            )
            .await?;
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for entry in entries {
            let Ok(incident) = Incident::from_bytes(&entry.payload) else {
                tracing::warn!(subject = %entry.subject, "undecodable incident in history skipped");
                continue;
            };
            if !seen.insert(incident.id.clone()) {
                continue;
            }
            if filter.admits(&incident) {
                found.push(incident);
                if found.len() >= filter.limit {
                    break;
                }
            }
        }
        Ok(found)
    }
}
