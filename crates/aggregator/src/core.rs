//! The aggregator's state as a pure state machine: no I/O, no async, the
//! time is a parameter. The intake decodes messages at the bus edge, asks
//! the dedup store for a verdict (outside any lock), then applies the
//! decoded message and the verdict here; reports, alerts and the anomaly
//! context are read from here.
//!
//! Alert lifecycle: every sighting of a condition (a finding, new or a
//! duplicate inside the dedup window) keeps one *firing* alert per dedup key
//! and refreshes it; once the sensor instance that last saw it has run
//! `resolve_after_passes` passes that began after the sighting without
//! seeing it again, the alert is *resolved* (any instance of the sensor
//! counts when that one has gone quiet). A condition seen again after that
//! fires a new alert. Each transition is returned to the caller, which
//! publishes it.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use inspector_domain::scope::{NoLookup, OwnerLookup};
use inspector_domain::{
    Alert, AlertStatus, DeliveryStatus, Finding, Incident, InspectionReport, Scope, ScopeMatch,
    SensorError, SensorRun, SensorStatus,
};

use crate::config::AggregatorConfig;
use crate::context::Query;
use crate::dedup::Verdict;
use crate::incidents::{IncidentEvent, Incidents};

/// Most run errors kept per sensor per window (a sensor failing on every
/// metric every pass must not bloat the report).
const MAX_ERRORS_PER_SENSOR: usize = 50;

/// Most recent findings kept for the anomaly context, whatever the window.
const MAX_RECENT: usize = 10_000;

/// What became of one finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Counted {
    /// First seen in the dedup window: in this window's report.
    New,
    /// Same key already reported inside the TTL.
    Duplicate,
    /// A redelivered finding already in the current window.
    AlreadyCounted,
}

/// The result of applying a finding: how it counted, and the alert
/// transition it caused (a new firing alert), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingOutcome {
    pub counted: Counted,
    pub transition: Option<Alert>,
}

#[derive(Debug, Default)]
struct SensorTrack {
    /// Finish time the sensor reported for its latest run.
    last_run_at: Option<DateTime<Utc>>,
    /// When the latest run summary arrived here; staleness is judged on
    /// this, so clock skew between hosts cannot make a sensor look stale.
    last_seen: Option<DateTime<Utc>>,
    interval: Option<chrono::Duration>,
    /// When each instance's latest run summary arrived.
    instances: BTreeMap<String, DateTime<Utc>>,
    /// Series each instance's latest run could not judge yet.
    warming_up: BTreeMap<String, u32>,
    errors: Vec<SensorError>,
    shadow: bool,
}

impl SensorTrack {
    fn interval(&self, configured: Option<chrono::Duration>) -> chrono::Duration {
        self.interval
            .or(configured)
            .unwrap_or(chrono::Duration::seconds(60))
    }
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

#[derive(Debug, Clone)]
struct AlertEntry {
    alert: Alert,
    /// Passes of the owning sensor since the last sighting.
    misses: u32,
}

/// Alert states changed since the last [`Aggregator::take_alert_changes`],
/// for the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    pub upserted: Vec<Alert>,
    /// Keys of resolved alerts past their retention.
    pub removed: Vec<String>,
}

/// A recent finding with where it points and the incident holding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub finding: Finding,
    pub scope: Scope,
    pub incident: Option<String>,
}

/// The part of the state a scoped anomaly context shows (see
/// [`Aggregator::scoped_context`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopedSnapshot {
    /// Most relevant first.
    pub items: Vec<(ScopeMatch, Placed)>,
    pub total_items: usize,
    /// The incidents touching the scope in the window, most relevant first.
    pub incidents: Vec<Incident>,
}

/// How far past `at` a finding's time may be and still count (clock skew
/// between a sensor's host and the aggregator's).
const CLOCK_SKEW_SECONDS: i64 = 300;

/// Most members listed per incident in one context.
const MAX_CONTEXT_MEMBERS: usize = 10;

/// Most incidents in one context.
const MAX_CONTEXT_INCIDENTS: usize = 20;

/// The first `k` of `items` in `order`, sorted, and how many items there
/// were; O(n) selection, no copies.
fn top<'a, T>(
    items: impl Iterator<Item = &'a T>,
    k: usize,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> (Vec<&'a T>, usize) {
    let mut refs: Vec<&T> = items.collect();
    let total = refs.len();
    if k == 0 {
        refs.clear();
    } else if refs.len() > k {
        refs.select_nth_unstable_by(k - 1, |a, b| order(a, b));
        refs.truncate(k);
    }
    refs.sort_by(|a, b| order(a, b));
    (refs, total)
}

/// The aggregator's state.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    instance: String,
    started_at: DateTime<Utc>,
    window: Window,
    sensors: BTreeMap<String, SensorTrack>,
    recent: VecDeque<Placed>,
    alerts: BTreeMap<String, AlertEntry>,
    incidents: Incidents,
    changed: BTreeSet<String>,
    removed: Vec<String>,
    /// Bumped by every change, so readers can cache what they derive.
    generation: u64,
}

impl Aggregator {
    pub fn new(config: AggregatorConfig, instance: String, now: DateTime<Utc>) -> Self {
        Aggregator {
            instance,
            started_at: now,
            window: Window::new(now),
            sensors: BTreeMap::new(),
            recent: VecDeque::new(),
            alerts: BTreeMap::new(),
            incidents: Incidents::new(config.incidents.clone()),
            changed: BTreeSet::new(),
            removed: Vec::new(),
            generation: 0,
            config,
        }
    }

    /// Changes so far: equal generations mean equal state.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn config(&self) -> &AggregatorConfig {
        &self.config
    }

    /// Alerts loaded from the store at start-up (another aggregator's, or
    /// this one's before a restart). Known keys keep the newer sighting.
    pub fn restore_alerts(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        for alert in alerts {
            match self.alerts.get(&alert.key) {
                Some(known) if known.alert.last_seen_at >= alert.last_seen_at => {}
                _ => {
                    self.alerts
                        .insert(alert.key.clone(), AlertEntry { alert, misses: 0 });
                }
            }
        }
    }

    /// Whether this finding (by id) is already in the current window: a
    /// redelivery that needs no dedup verdict.
    pub fn is_counted(&self, finding_id: &str) -> bool {
        self.window.ids.contains(finding_id)
    }

    /// Applies a finding with the dedup store's verdict; pods resolve to
    /// owners by their names alone.
    pub fn apply_finding(
        &mut self,
        finding: Finding,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> FindingOutcome {
        self.apply_finding_with(finding, verdict, now, &NoLookup)
    }

    /// Applies a finding with the dedup store's verdict, asking `owners`
    /// for the owner of a pod it names.
    pub fn apply_finding_with(
        &mut self,
        finding: Finding,
        verdict: Verdict,
        now: DateTime<Utc>,
        owners: &impl OwnerLookup,
    ) -> FindingOutcome {
        self.generation += 1;
        if self.is_counted(&finding.id) {
            return FindingOutcome {
                counted: Counted::AlreadyCounted,
                transition: None,
            };
        }
        let key = finding.dedup_key();
        let scope = self.config.incidents.scope.resolve(&finding.labels, owners);
        let observed = self.incidents.observe(&key, &finding, scope.clone(), now);
        for moved in &observed.moved {
            if let Some(entry) = self.alerts.get_mut(moved)
                && entry.alert.incident_id != observed.incident
            {
                entry.alert.incident_id = observed.incident.clone();
                self.changed.insert(moved.clone());
            }
        }
        let transition = self.sighted(key, &finding, observed.incident.clone());
        let counted = match verdict {
            Verdict::Duplicate => {
                self.window.duplicates += 1;
                Counted::Duplicate
            }
            // A redelivery is a finding this window has not counted yet
            // (the previous holder crashed before reporting it): count it.
            Verdict::New | Verdict::Redelivery => {
                self.window.ids.insert(finding.id.clone());
                self.window.findings.push(finding.clone());
                self.recent.push_back(Placed {
                    finding,
                    scope,
                    incident: observed.incident,
                });
                self.trim_recent(now);
                Counted::New
            }
        };
        FindingOutcome {
            counted,
            transition,
        }
    }

    /// A sighting of the condition behind `finding`: refresh its firing
    /// alert, or fire one.
    fn sighted(
        &mut self,
        key: String,
        finding: &Finding,
        incident: Option<String>,
    ) -> Option<Alert> {
        let shadow = self.is_shadow(finding);
        match self.alerts.get_mut(&key) {
            Some(entry) if entry.alert.is_firing() => {
                if finding.detected_at >= entry.alert.last_seen_at {
                    entry.alert.last_seen_at = finding.detected_at;
                    entry.alert.finding = finding.clone();
                    entry.alert.shadow = shadow;
                    entry.misses = 0;
                    self.changed.insert(key);
                }
                if incident.is_some() && entry.alert.incident_id != incident {
                    entry.alert.incident_id = incident;
                }
                None
            }
            // A late copy of a sighting from before the resolution does not
            // bring the condition back.
            Some(entry)
                if entry
                    .alert
                    .ends_at()
                    .is_some_and(|e| finding.detected_at <= e) =>
            {
                None
            }
            _ => {
                let alert = Alert {
                    key: key.clone(),
                    status: AlertStatus::Firing,
                    starts_at: finding.detected_at,
                    last_seen_at: finding.detected_at,
                    finding: finding.clone(),
                    shadow,
                    incident_id: incident,
                };
                self.alerts.insert(
                    key.clone(),
                    AlertEntry {
                        alert: alert.clone(),
                        misses: 0,
                    },
                );
                self.changed.insert(key);
                Some(alert)
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
                .get(finding.sensor())
                .is_some_and(|s| s.shadow)
    }

    /// Counts an undecodable or invalid message.
    pub fn malformed(&mut self) {
        self.window.malformed += 1;
    }

    /// Applies a run summary; returns the alerts it resolved.
    pub fn apply_run(&mut self, run: SensorRun, now: DateTime<Utc>) -> Vec<Alert> {
        self.generation += 1;
        let configured = self
            .config
            .sensors
            .get(&run.sensor)
            .and_then(|s| chrono::Duration::from_std(s.interval).ok());
        let track = self.sensors.entry(run.sensor.clone()).or_default();
        track.last_seen = Some(now);
        if track.last_run_at.is_none_or(|last| run.finished_at > last) {
            track.last_run_at = Some(run.finished_at);
        }
        // The wire edge bounds the interval, so this cannot overflow.
        if let Some(interval) = i64::try_from(run.interval_seconds)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .filter(|d| *d > chrono::Duration::zero())
        {
            track.interval = Some(interval);
        }
        track.shadow = run.shadow;
        track.instances.insert(run.instance.clone(), now);
        track
            .warming_up
            .insert(run.instance.clone(), run.warming_up);
        for error in &run.errors {
            if track.errors.len() < MAX_ERRORS_PER_SENSOR {
                track.errors.push(SensorError {
                    subject: format!("{}: {}", run.instance, error.subject),
                    message: error.message.clone(),
                });
            }
        }
        let interval = track.interval(configured);
        let instances = track.instances.clone();
        let resolve_after = self.config.alerts.resolve_after_passes;
        let mut resolved = Vec::new();
        for (key, entry) in &mut self.alerts {
            let alert = &entry.alert;
            if !alert.is_firing()
                || alert.finding.sensor() != run.sensor
                || run.started_at <= alert.last_seen_at
            {
                continue;
            }
            // The instance that saw it judges it; when that instance has
            // gone quiet (scaled away), any instance of the sensor does.
            let owner_quiet = instances
                .get(&alert.finding.instance)
                .is_none_or(|seen| now - *seen > interval * 2);
            if alert.finding.instance != run.instance && !owner_quiet {
                continue;
            }
            entry.misses += 1;
            if entry.misses >= resolve_after {
                entry.alert.status = AlertStatus::Resolved { ends_at: now };
                self.incidents.alert_resolved(key, now);
                self.changed.insert(key.clone());
                resolved.push(entry.alert.clone());
            }
        }
        resolved
    }

    /// Records that an alert transition was published.
    pub fn alert_published(&mut self) {
        self.window.alerts += 1;
    }

    fn trim_recent(&mut self, now: DateTime<Utc>) {
        let horizon = now
            - chrono::Duration::from_std(self.config.context_window)
                .unwrap_or(chrono::Duration::hours(1));
        while self
            .recent
            .front()
            .is_some_and(|p| p.finding.detected_at < horizon)
        {
            self.recent.pop_front();
        }
        // A hard cap keeps memory bounded under a flood.
        while self.recent.len() > MAX_RECENT {
            self.recent.pop_front();
        }
    }

    /// What the context for `query` shows: the recent findings in its
    /// window, ranked by scope match (workload, namespace, cluster), then
    /// severity, then closeness to `at`, the first `max_items` of them, and
    /// the incidents touching the scope. Only what is returned is copied:
    /// this runs under the lock intake needs.
    pub fn scoped_context(&mut self, query: &Query, now: DateTime<Utc>) -> ScopedSnapshot {
        self.trim_recent(now);
        let namespace = query.namespace.as_deref();
        let workload = query.workload.as_deref();
        // Sensors' clocks run a little ahead of this one at times: a
        // finding stamped just after `at` still belongs to it.
        let skew = chrono::Duration::seconds(CLOCK_SKEW_SECONDS);
        let in_window = |t: DateTime<Utc>| t >= query.from && t <= query.at + skew;
        let matched: Vec<(ScopeMatch, &Placed)> = self
            .recent
            .iter()
            .filter(|p| in_window(p.finding.detected_at))
            .map(|p| (p.scope.matches(namespace, workload), p))
            .collect();
        let distance = |p: &Placed| (query.at - p.finding.detected_at).abs();
        let (items, total_items) = top(matched.iter(), query.max_items, |a, b| {
            a.0.cmp(&b.0)
                .then(b.1.finding.severity.cmp(&a.1.finding.severity))
                .then(distance(a.1).cmp(&distance(b.1)))
                .then(a.1.finding.id.cmp(&b.1.finding.id))
        });
        let incident_match = |incident: &Incident| {
            incident
                .members
                .iter()
                .map(|m| m.scope.matches(namespace, workload))
                .min()
                .unwrap_or(ScopeMatch::Cluster)
        };
        let scoped = namespace.is_some() || workload.is_some();
        let touching: Vec<(ScopeMatch, &Incident)> = self
            .incidents
            .all()
            .filter(|i| i.first_seen <= query.at && i.last_seen >= query.from)
            .map(|i| (incident_match(i), i))
            .filter(|(m, _)| !scoped || *m != ScopeMatch::Cluster)
            .collect();
        let (incidents, _) = top(touching.iter(), MAX_CONTEXT_INCIDENTS, |a, b| {
            a.0.cmp(&b.0)
                .then(b.1.is_open().cmp(&a.1.is_open()))
                .then(b.1.severity.cmp(&a.1.severity))
                .then(b.1.last_seen.cmp(&a.1.last_seen))
        });
        ScopedSnapshot {
            items: items.into_iter().map(|(m, p)| (*m, (*p).clone())).collect(),
            total_items,
            incidents: incidents
                .into_iter()
                .map(|(_, i)| {
                    // The strongest members tell the story; the rest are counted.
                    let mut incident = (*i).clone();
                    let over = incident.members.len().saturating_sub(MAX_CONTEXT_MEMBERS);
                    incident.members.truncate(MAX_CONTEXT_MEMBERS);
                    incident.members_omitted = incident.members_omitted.saturating_add(over as u32);
                    incident
                })
                .collect(),
        }
    }

    /// Incident transitions since the last call (after resolving those
    /// quiet long enough), one per incident.
    pub fn take_incident_events(&mut self, now: DateTime<Utc>) -> Vec<IncidentEvent> {
        self.incidents
            .tick(now, self.config.alerts.resolved_retention);
        self.incidents.take_events()
    }

    /// Open incidents from history (a restart, another replica): their
    /// members' alerts count as firing until this core's alerts say not.
    pub fn restore_incidents(&mut self, incidents: impl IntoIterator<Item = Incident>) {
        self.incidents.restore(incidents);
        for (key, entry) in &self.alerts {
            if !entry.alert.is_firing() {
                let at = entry.alert.ends_at().unwrap_or(entry.alert.last_seen_at);
                self.incidents.alert_resolved(key, at);
            }
        }
    }

    /// Open incidents and those closed recently.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.all()
    }

    /// Puts back incident events the bus could not take.
    pub fn requeue_incident_events(&mut self, events: Vec<IncidentEvent>) {
        self.incidents.requeue(events);
    }

    pub fn open_incidents(&self) -> usize {
        self.incidents.open_count()
    }

    /// Sightings refused an incident because `max_open` were open.
    pub fn incidents_refused(&self) -> u64 {
        self.incidents.refused()
    }

    /// Firing alerts and those resolved within the retention, most recent
    /// first.
    pub fn alerts(&self, now: DateTime<Utc>) -> Vec<Alert> {
        let retention = chrono::Duration::from_std(self.config.alerts.resolved_retention)
            .unwrap_or(chrono::Duration::hours(1));
        let mut alerts: Vec<Alert> = self
            .alerts
            .values()
            .map(|entry| entry.alert.clone())
            .filter(|alert| alert.ends_at().is_none_or(|ends| now - ends <= retention))
            .collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.last_seen_at));
        alerts
    }

    /// Alert states changed since the last call (for the store); resolved
    /// alerts past their retention are forgotten here.
    pub fn take_alert_changes(&mut self, now: DateTime<Utc>) -> AlertChanges {
        let retention = chrono::Duration::from_std(self.config.alerts.resolved_retention)
            .unwrap_or(chrono::Duration::hours(1));
        let expired: Vec<String> = self
            .alerts
            .iter()
            .filter(|(_, e)| e.alert.ends_at().is_some_and(|ends| now - ends > retention))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            self.alerts.remove(key);
            self.changed.remove(key);
        }
        self.removed.extend(expired);
        let upserted = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|key| self.alerts.get(&key).map(|e| e.alert.clone()))
            .collect();
        AlertChanges {
            upserted,
            removed: std::mem::take(&mut self.removed),
        }
    }

    /// Puts back changes the store could not take, for the next attempt
    /// (states changed since then are written in their newer form).
    pub fn requeue_alert_changes(&mut self, changes: AlertChanges) {
        self.changed
            .extend(changes.upserted.into_iter().map(|alert| alert.key));
        self.removed.extend(changes.removed);
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
                let configured = settings.and_then(|s| chrono::Duration::from_std(s.interval).ok());
                let interval = track.map_or_else(
                    || configured.unwrap_or(chrono::Duration::seconds(60)),
                    |t| t.interval(configured),
                );
                let since = track.and_then(|t| t.last_seen).unwrap_or(self.started_at);
                SensorStatus {
                    sensor: name.clone(),
                    enabled,
                    stale: enabled && now - since > interval * 2,
                    last_run_at: track.and_then(|t| t.last_run_at),
                    instances: track
                        .map(|t| t.instances.keys().cloned().collect())
                        .unwrap_or_default(),
                    errors: track.map(|t| t.errors.clone()).unwrap_or_default(),
                    shadow: settings.is_some_and(|s| s.shadow) || track.is_some_and(|t| t.shadow),
                    warming_up: track.map_or(0, |t| t.warming_up.values().sum()),
                }
            })
            .collect()
    }

    /// Closes the current window into a report and opens the next one.
    /// `dedup` is the dedup store's `(backend, degraded)` for the window;
    /// `delivery` how pushing alerts went.
    pub fn assemble_report(
        &mut self,
        now: DateTime<Utc>,
        dedup: (String, bool),
        delivery: Vec<DeliveryStatus>,
    ) -> InspectionReport {
        self.generation += 1;
        let sensors = self.sensor_statuses(now);
        for track in self.sensors.values_mut() {
            track.errors.clear();
        }
        let window = std::mem::replace(&mut self.window, Window::new(now));
        let (dedup_backend, dedup_degraded) = dedup;
        let counts = InspectionReport::count_by_kind(&window.findings);
        let mut findings = window.findings;
        let mut findings_omitted = 0;
        if findings.len() > self.config.report_max_findings {
            // Most severe, then most recent, first: the cap drops the rest.
            findings.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(b.detected_at.cmp(&a.detected_at))
            });
            findings_omitted = (findings.len() - self.config.report_max_findings) as u32;
            findings.truncate(self.config.report_max_findings);
        }
        InspectionReport {
            window_start: window.start,
            window_end: now,
            counts,
            findings,
            duplicates_suppressed: window.duplicates,
            sensors,
            shadow: self.config.shadow,
            malformed_messages: window.malformed,
            dedup_backend,
            dedup_degraded,
            alerts_published: window.alerts,
            aggregator_instance: self.instance.clone(),
            alerts: self.alerts(now),
            alert_delivery: delivery,
            findings_omitted,
            alerts_omitted: 0,
            incidents: self.incidents.all().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SensorSettings;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_680_000 + seconds, 0).unwrap()
    }

    fn finding(key: &str, instance: &str, seen: i64) -> Finding {
        inspector_domain::fixtures::trend(key, &[], instance, at(seen))
    }

    fn run(instance: &str, started: i64) -> SensorRun {
        SensorRun {
            sensor: "trend-predictor".into(),
            instance: instance.into(),
            started_at: at(started),
            finished_at: at(started),
            findings: 0,
            errors: vec![],
            interval_seconds: 60,
            shadow: false,
            warming_up: 0,
        }
    }

    fn aggregator() -> Aggregator {
        Aggregator::new(AggregatorConfig::default(), "a-0".into(), at(0))
    }

    #[test]
    fn a_condition_fires_once_refreshes_and_resolves_after_three_quiet_passes() {
        let mut core = aggregator();
        let first = core.apply_finding(finding("disk", "t-0", 0), Verdict::New, at(1));
        assert_eq!(first.counted, Counted::New);
        let fired = first.transition.expect("fires");
        assert_eq!(
            (fired.status, fired.starts_at),
            (AlertStatus::Firing, at(0))
        );
        assert!(
            core.apply_run(run("t-0", 0), at(1)).is_empty(),
            "its own pass"
        );

        // Seen again (a duplicate for the report): refreshed, no transition.
        let again = core.apply_finding(finding("disk", "t-0", 60), Verdict::Duplicate, at(61));
        assert_eq!(
            (again.counted, again.transition),
            (Counted::Duplicate, None)
        );
        assert!(core.apply_run(run("t-0", 60), at(61)).is_empty());
        assert_eq!(core.alerts(at(61))[0].last_seen_at, at(60));

        // Three passes without it; a pass of another instance does not count.
        assert!(core.apply_run(run("t-1", 120), at(121)).is_empty());
        assert!(core.apply_run(run("t-0", 120), at(121)).is_empty());
        assert!(core.apply_run(run("t-0", 180), at(181)).is_empty());
        let resolved = core.apply_run(run("t-0", 240), at(241));
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            resolved[0].status,
            AlertStatus::Resolved { ends_at: at(241) }
        );
        assert_eq!(resolved[0].starts_at, at(0));

        // Back again later: a new episode.
        let back = core.apply_finding(finding("disk", "t-0", 600), Verdict::Duplicate, at(601));
        let refired = back.transition.expect("fires again");
        assert_eq!(refired.starts_at, at(600));
        assert!(refired.is_firing());
        // A late copy from before the resolution changes nothing.
        let mut late = finding("disk", "t-0", 200);
        late.id = "late".into();
        core.apply_run(run("t-0", 660), at(661));
        core.apply_run(run("t-0", 720), at(721));
        core.apply_run(run("t-0", 780), at(781));
        assert!(core.alerts(at(781))[0].ends_at().is_some());
        assert_eq!(
            core.apply_finding(late, Verdict::Duplicate, at(782))
                .transition,
            None
        );
    }

    #[test]
    fn when_the_owner_goes_quiet_any_instance_resolves() {
        let mut core = aggregator();
        core.apply_run(run("t-0", 0), at(0));
        core.apply_finding(finding("disk", "t-0", 0), Verdict::New, at(1));
        // t-0 is scaled away; t-1 now owns the rule and does not see it.
        for pass in 1..=3 {
            let resolved = core.apply_run(run("t-1", 200 + pass * 60), at(200 + pass * 60));
            assert_eq!(resolved.len(), usize::from(pass == 3), "pass {pass}");
        }
    }

    #[test]
    fn shadow_alerts_are_tracked_and_marked() {
        let mut config = AggregatorConfig::default();
        config.sensors.insert(
            "trend-predictor".into(),
            SensorSettings {
                shadow: true,
                ..SensorSettings::default()
            },
        );
        let mut core = Aggregator::new(config, "a-0".into(), at(0));
        let outcome = core.apply_finding(finding("disk", "t-0", 0), Verdict::New, at(1));
        assert!(outcome.transition.unwrap().shadow);
    }

    #[test]
    fn changes_for_the_store_and_retention() {
        let mut core = aggregator();
        core.apply_finding(finding("disk", "t-0", 0), Verdict::New, at(1));
        let changes = core.take_alert_changes(at(2));
        assert_eq!(changes.upserted.len(), 1);
        assert!(changes.removed.is_empty());
        assert_eq!(core.take_alert_changes(at(3)), AlertChanges::default());
        for pass in 1..=3 {
            core.apply_run(run("t-0", pass * 60), at(pass * 60));
        }
        assert_eq!(core.take_alert_changes(at(200)).upserted.len(), 1);
        // Past the retention (1 h) the resolved alert is forgotten.
        let later = at(180 + 3601);
        assert!(core.alerts(later).is_empty());
        assert_eq!(
            core.take_alert_changes(later).removed,
            vec!["trend_breach|disk".to_string()]
        );
    }

    #[test]
    fn restored_alerts_keep_the_newer_sighting() {
        let mut core = aggregator();
        core.apply_finding(finding("disk", "t-0", 100), Verdict::New, at(101));
        let mut older = core.alerts(at(101))[0].clone();
        older.last_seen_at = at(50);
        core.restore_alerts([older]);
        assert_eq!(core.alerts(at(101))[0].last_seen_at, at(100));
    }

    #[test]
    fn reports_carry_alerts_and_delivery() {
        let mut core = aggregator();
        core.apply_finding(finding("disk", "t-0", 0), Verdict::New, at(1));
        core.apply_finding(finding("mem", "t-0", 0), Verdict::Duplicate, at(1));
        let report = core.assemble_report(
            at(60),
            ("redis".into(), false),
            vec![DeliveryStatus {
                target: "http://am".into(),
                attempts: 1,
                failures: 0,
                last_error: None,
            }],
        );
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.duplicates_suppressed, 1);
        assert_eq!(report.alerts.len(), 2, "a duplicate sighting still fires");
        assert_eq!(report.alert_delivery.len(), 1);
    }

    #[test]
    fn sensors_go_stale_after_two_intervals_without_a_run() {
        let mut config = AggregatorConfig::default();
        config.sensors.insert(
            "trend-predictor".into(),
            SensorSettings {
                interval: std::time::Duration::from_secs(60),
                ..SensorSettings::default()
            },
        );
        let mut core = Aggregator::new(config, "a-0".into(), at(0));
        let stale = |core: &Aggregator, now| {
            core.sensor_statuses(now)
                .into_iter()
                .find(|s| s.sensor == "trend-predictor")
                .unwrap()
                .stale
        };
        assert!(!stale(&core, at(120)), "two intervals not yet over");
        assert!(stale(&core, at(121)), "never reported within two intervals");
        core.apply_run(run("t-0", 121), at(121));
        assert!(!stale(&core, at(240)));
        assert!(stale(&core, at(242)));
    }

    use inspector_domain::fixtures::labelled;

    fn query(
        namespace: Option<&str>,
        workload: Option<&str>,
        at: DateTime<Utc>,
        max: usize,
    ) -> Query {
        Query {
            namespace: namespace.map(Into::into),
            workload: workload.map(Into::into),
            at,
            from: at - chrono::Duration::hours(1),
            max_items: max,
        }
    }

    /// The checkout story of the demo: a request-rate spike labelled only
    /// `service="checkout"` and two new log shapes of shop/checkout are one
    /// incident; the email queue's trend is another; the scoped context
    /// ranks checkout's findings first and says why.
    #[test]
    fn a_spike_and_new_log_shapes_of_one_workload_are_one_incident() {
        let mut core = aggregator();
        let spike = labelled(
            inspector_domain::fixtures::anomaly("http_requests_per_second", "b-0", at(10)),
            &[("service", "checkout")],
        );
        let logs: Vec<Finding> = ["payment timeout after <*> ms", "circuit breaker open"]
            .iter()
            .enumerate()
            .map(|(i, template)| {
                let mut log = inspector_domain::fixtures::log_pattern(
                    "checkout",
                    template,
                    at(20 + i as i64),
                );
                log.key = format!("checkout#{i}");
                labelled(
                    log,
                    &[
                        ("namespace", "shop"),
                        ("workload", "checkout"),
                        ("pod", "checkout-7f9c6d8b4-x9k2p"),
                    ],
                )
            })
            .collect();
        let email = labelled(
            finding("queue_depth", "t-0", 15),
            &[("namespace", "shop"), ("deployment", "email")],
        );
        let mut ids = Vec::new();
        for f in std::iter::once(spike).chain(logs).chain([email]) {
            let outcome = core.apply_finding(f, Verdict::New, at(30));
            ids.push(outcome.transition.unwrap().incident_id.unwrap());
        }
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[3], "the email queue is another story");
        let incidents: Vec<&Incident> = core.incidents().collect();
        assert_eq!(incidents.len(), 2);
        let checkout = incidents.iter().find(|i| i.id == ids[0]).unwrap();
        assert_eq!(checkout.members.len(), 3);
        assert_eq!(checkout.scope.to_string(), "shop/checkout");
        assert_eq!(checkout.severity, inspector_domain::Severity::Critical);
        assert_eq!(
            checkout.title,
            "shop/checkout: http_requests_per_second 10× its usual, 2 new log shapes"
        );
        let events = core.take_incident_events(at(31));
        assert_eq!(events.len(), 2, "one event per incident, coalesced");

        let snapshot =
            core.scoped_context(&query(Some("shop"), Some("checkout"), at(40), 10), at(40));
        let matches: Vec<ScopeMatch> = snapshot.items.iter().map(|(m, _)| *m).collect();
        assert_eq!(
            matches,
            [
                ScopeMatch::Workload,
                ScopeMatch::Workload,
                ScopeMatch::Workload,
                ScopeMatch::Namespace
            ]
        );
        assert_eq!(
            snapshot.items[0].1.finding.key, "http_requests_per_second",
            "most severe first"
        );
        assert_eq!(snapshot.incidents[0].id, ids[0]);
        // Outside the window: nothing.
        let late = core.scoped_context(
            &query(Some("shop"), None, at(40) + chrono::Duration::hours(3), 10),
            at(40),
        );
        assert!(late.items.is_empty() && late.incidents.is_empty());
    }

    /// The context shows at most `max_items`, the most relevant, and counts
    /// the rest.
    #[test]
    fn the_context_caps_items_and_counts_the_rest() {
        let mut core = Aggregator::new(AggregatorConfig::default(), "agg".into(), at(0));
        for i in 0..100 {
            let mut f = finding(&format!("k{i}"), "t", i);
            if i == 3 {
                f.severity = inspector_domain::Severity::Critical;
            }
            core.apply_finding(f, Verdict::New, at(100));
        }
        let snapshot = core.scoped_context(&query(None, None, at(100), 10), at(100));
        assert_eq!(snapshot.total_items, 100);
        assert_eq!(snapshot.items.len(), 10);
        assert_eq!(snapshot.items[0].1.finding.key, "k3", "most severe first");
        let rest: Vec<&str> = snapshot.items[1..]
            .iter()
            .map(|(_, p)| p.finding.key.as_str())
            .collect();
        assert_eq!(
            rest,
            [
                "k99", "k98", "k97", "k96", "k95", "k94", "k93", "k92", "k91"
            ],
            "closest to `at` next"
        );
        assert!(
            core.scoped_context(&query(None, None, at(100), 0), at(100))
                .items
                .is_empty()
        );
    }

    /// An incident resolves `quiet_for` after the last of its alerts did.
    #[test]
    fn an_incident_resolves_when_its_alerts_have_and_it_stayed_quiet() {
        let mut core = aggregator();
        let f = labelled(
            finding("disk", "t-0", 0),
            &[("namespace", "shop"), ("deployment", "db")],
        );
        core.apply_finding(f, Verdict::New, at(1));
        let _ = core.take_incident_events(at(1));
        for pass in 1..=3 {
            core.apply_run(run("t-0", 60 * pass), at(60 * pass + 1));
        }
        assert_eq!(
            core.open_incidents(),
            1,
            "alert resolved, quiet_for not over yet"
        );
        assert!(core.take_incident_events(at(181 + 599)).is_empty());
        let events = core.take_incident_events(at(181 + 600));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition, crate::incidents::Transition::Resolved);
        assert_eq!(core.open_incidents(), 0);
        // Seen again: a new incident.
        let again = labelled(
            finding("disk", "t-0", 900),
            &[("namespace", "shop"), ("deployment", "db")],
        );
        let outcome = core.apply_finding(again, Verdict::New, at(900));
        assert_ne!(
            outcome.transition.unwrap().incident_id.as_deref(),
            Some(events[0].incident.id.as_str())
        );
    }
}
