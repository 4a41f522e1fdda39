//! The aggregator's state, independent of transport: take messages in,
//! deduplicate, decide on alerts, track sensors, and close each window into
//! an [`InspectionReport`].

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use inspector_bus::Subjects;
use inspector_domain::wire::WireMessage;
use inspector_domain::{Finding, InspectionReport, SensorError, SensorRun, SensorStatus};

use crate::config::AggregatorConfig;
use crate::dedup::{Deduplicator, Verdict};

/// Most run errors kept per sensor per window (a sensor failing on every
/// metric every pass must not bloat the report).
const MAX_ERRORS_PER_SENSOR: usize = 50;

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// A finding first seen in the dedup window; `alert` when it must be
    /// published on the alerts subject (not in shadow mode).
    NewFinding { finding: Box<Finding>, alert: bool },
    /// Same key already reported inside the TTL.
    Duplicate,
    /// A redelivered finding already in the current window.
    AlreadyCounted,
    /// A run summary.
    Run,
    /// Not a valid message; skipped.
    Malformed(String),
}

#[derive(Debug, Default)]
struct SensorTrack {
    /// Finish time the sensor reported for its latest run.
    last_run_at: Option<DateTime<Utc>>,
    /// When the latest run summary arrived here; staleness is judged on
    /// this, so clock skew between hosts cannot make a sensor look stale.
    last_seen: Option<DateTime<Utc>>,
    interval: Option<chrono::Duration>,
    instances: BTreeSet<String>,
    errors: Vec<SensorError>,
    shadow: bool,
}

#[derive(Debug)]
struct Window {
    start: DateTime<Utc>,
    findings: Vec<Finding>,
    ids: HashSet<String>,
    duplicates: u32,
    malformed: u32,
    alerts: u32,
}

impl Window {
    fn new(start: DateTime<Utc>) -> Self {
        Window {
            start,
            findings: Vec::new(),
            ids: HashSet::new(),
            duplicates: 0,
            malformed: 0,
            alerts: 0,
        }
    }
}

/// The aggregator's state.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    subjects: Subjects,
    dedup: Deduplicator,
    instance: String,
    started_at: DateTime<Utc>,
    window: Window,
    sensors: BTreeMap<String, SensorTrack>,
    recent: VecDeque<Finding>,
}

impl Aggregator {
    /// `subjects` are the bus' (they decide which messages are findings).
    pub fn new(
        config: AggregatorConfig,
        subjects: Subjects,
        dedup: Deduplicator,
        instance: String,
        now: DateTime<Utc>,
    ) -> Self {
        Aggregator {
            subjects,
            dedup,
            instance,
            started_at: now,
            window: Window::new(now),
            sensors: BTreeMap::new(),
            recent: VecDeque::new(),
            config,
        }
    }

    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    pub fn dedup(&self) -> &Deduplicator {
        &self.dedup
    }

    /// Takes one message from the durable intake.
    pub async fn handle(&mut self, subject: &str, payload: &[u8], now: DateTime<Utc>) -> Handled {
        if self.subjects.is_finding(subject) {
            match Finding::from_bytes(payload) {
                Ok(finding) => self.handle_finding(finding, now).await,
                Err(error) => self.malformed(subject, payload.len(), error.to_string()),
            }
        } else if self.subjects.is_run(subject) {
            match SensorRun::from_bytes(payload) {
                Ok(run) => {
                    self.handle_run(run, now);
                    Handled::Run
                }
                Err(error) => self.malformed(subject, payload.len(), error.to_string()),
            }
        } else {
            self.malformed(subject, payload.len(), "unexpected subject".into())
        }
    }

    fn malformed(&mut self, subject: &str, len: usize, error: String) -> Handled {
        tracing::warn!(%subject, bytes = len, %error, "skipping malformed message");
        self.window.malformed += 1;
        Handled::Malformed(error)
    }

    async fn handle_finding(&mut self, finding: Finding, now: DateTime<Utc>) -> Handled {
        if self.window.ids.contains(&finding.id) {
            return Handled::AlreadyCounted;
        }
        match self
            .dedup
            .check(&finding.dedup_key(), &finding.id, now)
            .await
        {
            Verdict::Duplicate => {
                self.window.duplicates += 1;
                Handled::Duplicate
            }
            // A redelivery is a finding this window has not counted yet
            // (the previous holder crashed before reporting it): count it.
            // Alerts are therefore at least once; consumers dedupe on `id`.
            Verdict::New | Verdict::Redelivery => {
                let alert = !self.is_shadow(&finding);
                self.window.ids.insert(finding.id.clone());
                self.window.findings.push(finding.clone());
                self.recent.push_back(finding.clone());
                self.trim_recent(now);
                Handled::NewFinding {
                    finding: Box::new(finding),
                    alert,
                }
            }
        }
    }

    /// Shadow when global shadow is on, the sensor is configured shadow, or
    /// the sensor itself ran in shadow mode.
    fn is_shadow(&self, finding: &Finding) -> bool {
        self.config.shadow
            || finding.shadow
            || self
                .config
                .sensors
                .get(&finding.sensor)
                .is_some_and(|s| s.shadow)
    }

    fn handle_run(&mut self, run: SensorRun, now: DateTime<Utc>) {
        let track = self.sensors.entry(run.sensor.clone()).or_default();
        track.last_seen = Some(now);
        if track.last_run_at.is_none_or(|last| run.finished_at > last) {
            track.last_run_at = Some(run.finished_at);
        }
        if run.interval_seconds > 0 {
            track.interval = Some(chrono::Duration::seconds(run.interval_seconds as i64));
        }
        track.shadow = run.shadow;
        track.instances.insert(run.instance.clone());
        for error in run.errors {
            if track.errors.len() < MAX_ERRORS_PER_SENSOR {
                track.errors.push(SensorError {
                    subject: format!("{}: {}", run.instance, error.subject),
                    message: error.message,
                });
            }
        }
    }

    /// Records that the alert for a new finding was published.
    pub fn alert_published(&mut self) {
        self.window.alerts += 1;
    }

    fn trim_recent(&mut self, now: DateTime<Utc>) {
        let horizon = now
            - chrono::Duration::from_std(self.config.context_window)
                .unwrap_or(chrono::Duration::hours(1));
        while self.recent.front().is_some_and(|f| f.detected_at < horizon) {
            self.recent.pop_front();
        }
        // A hard cap keeps memory bounded under a flood.
        while self.recent.len() > 10_000 {
            self.recent.pop_front();
        }
    }

    /// Recent deduplicated findings (for the anomaly context).
    pub fn recent_findings(&mut self, now: DateTime<Utc>) -> Vec<Finding> {
        self.trim_recent(now);
        self.recent.iter().cloned().collect()
    }

    /// Sensor health as of `now`.
    pub fn sensor_statuses(&self, now: DateTime<Utc>) -> Vec<SensorStatus> {
        let names: BTreeSet<&String> = self
            .config
            .sensors
            .keys()
            .chain(self.sensors.keys())
            .collect();
        names
            .into_iter()
            .map(|name| {
                let settings = self.config.sensors.get(name);
                let enabled = settings.is_none_or(|s| s.enabled);
                let track = self.sensors.get(name);
                let interval = track
                    .and_then(|t| t.interval)
                    .or_else(|| settings.and_then(|s| chrono::Duration::from_std(s.interval).ok()))
                    .unwrap_or(chrono::Duration::seconds(60));
                let since = track.and_then(|t| t.last_seen).unwrap_or(self.started_at);
                SensorStatus {
                    sensor: name.clone(),
                    enabled,
                    stale: enabled && now - since > interval * 2,
                    last_run_at: track.and_then(|t| t.last_run_at),
                    instances: track
                        .map(|t| t.instances.iter().cloned().collect())
                        .unwrap_or_default(),
                    errors: track.map(|t| t.errors.clone()).unwrap_or_default(),
                    shadow: settings.is_some_and(|s| s.shadow) || track.is_some_and(|t| t.shadow),
                }
            })
            .collect()
    }

    /// Closes the current window into a report and opens the next one.
    pub fn assemble_report(&mut self, now: DateTime<Utc>) -> InspectionReport {
        let sensors = self.sensor_statuses(now);
        for track in self.sensors.values_mut() {
            track.errors.clear();
        }
        let window = std::mem::replace(&mut self.window, Window::new(now));
        let (dedup_backend, dedup_degraded) = self.dedup.take_status();
        InspectionReport {
            window_start: window.start,
            window_end: now,
            counts: InspectionReport::count_by_kind(&window.findings),
            findings: window.findings,
            duplicates_suppressed: window.duplicates,
            sensors,
            shadow: self.config.shadow,
            malformed_messages: window.malformed,
            dedup_backend,
            dedup_degraded,
            alerts_published: window.alerts,
            aggregator_instance: self.instance.clone(),
        }
    }
}
