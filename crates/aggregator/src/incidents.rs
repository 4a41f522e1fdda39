//! Grouping findings into incidents: pure (no I/O, the time is a
//! parameter), owned by the core.
//!
//! A sighting (a finding, new or a duplicate) joins every open incident
//! holding a condition whose scope meets its own (see [`Scope::meets`]) and
//! whose span of sightings, widened by `window` on both sides, covers the
//! sighting's time; a condition already in an open incident always joins
//! it. Joining none opens an incident; joining several merges them into the
//! oldest, which keeps its id. The grouping is thus the connected
//! components of "scopes meet within the window", whatever the order of
//! arrival. An incident resolves `quiet_for` after the last of its
//! conditions' alerts resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use inspector_domain::{
    Finding, FindingDetail, Incident, IncidentMember, IncidentState, Scope, Severity,
};

use crate::config::IncidentsConfig;

/// Most members listed per incident; more are counted in `members_omitted`.
const MAX_MEMBERS: usize = 200;
/// Most sighting ids listed per member.
const MAX_FINDING_IDS: usize = 20;
/// Most closed incidents kept for reports and the context.
const MAX_CLOSED: usize = 1000;

/// Namespace for incident ids (UUID v5).
const INCIDENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2b7e_41d0_6c3a_4f59_9e21_7d4b_a8c6_0f13);

/// What happened to an incident, as its event subject says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transition {
    Opened,
    Updated,
    Resolved,
    Merged,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Opened => "opened",
            Transition::Updated => "updated",
            Transition::Resolved => "resolved",
            Transition::Merged => "merged",
        }
    }
}

/// One incident event to publish: the transition and the incident after it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentEvent {
    pub transition: Transition,
    pub incident: Incident,
}

#[derive(Debug, Clone)]
struct Tracked {
    incident: Incident,
    /// Keys of every condition in it, listed or not, and whether its alert fires.
    firing: HashMap<String, bool>,
    /// Scopes of conditions not listed (over [`MAX_MEMBERS`]), with their spans.
    unlisted: Vec<(Scope, DateTime<Utc>, DateTime<Utc>)>,
    /// When the last firing condition resolved.
    quiet_since: Option<DateTime<Utc>>,
}

/// What observing a sighting did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The incident now holding the condition (none: `max_open` reached).
    pub incident: Option<String>,
    /// Keys of conditions that moved into it from merged incidents.
    pub moved: Vec<String>,
}

/// The incidents: open ones indexed by condition, workload and namespace,
/// and the recently closed.
#[derive(Debug)]
pub struct Incidents {
    config: IncidentsConfig,
    open: BTreeMap<String, Tracked>,
    by_key: HashMap<String, String>,
    by_workload: HashMap<String, BTreeSet<String>>,
    by_namespace: HashMap<String, BTreeSet<String>>,
    /// Incidents holding a namespace-wide condition, by namespace.
    namespace_wide: HashMap<String, BTreeSet<String>>,
    closed: VecDeque<Incident>,
    pending: BTreeMap<String, Transition>,
    refused: u64,
}

fn chrono(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// How strongly a member speaks for its incident: severity, then metric
/// evidence over log shapes, then how far off it is.
fn strength(member: &IncidentMember) -> (Severity, u8, i64) {
    let finding = &member.finding;
    let (rank, size) = match &finding.detail {
        FindingDetail::DynamicAnomaly(d) => (2, (d.deviation_sigma.abs() * 100.0) as i64),
        FindingDetail::TrendBreach(t) => (
            1,
            -(t.predicted_hours_to_breach.unwrap_or(0.0) * 100.0) as i64,
        ),
        FindingDetail::LogPattern(_) => (0, 0),
    };
    (finding.severity, rank, size)
}

/// A number as people write it: few digits, no trailing zeros.
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    let text = if magnitude >= 100.0 || magnitude == magnitude.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// One phrase for a metric finding ("request rate 3.1× its usual").
pub fn metric_phrase(finding: &Finding) -> Option<String> {
    match &finding.detail {
        FindingDetail::DynamicAnomaly(d) => {
            let ratio = d.current_value / d.expected_mean;
            Some(
                if d.expected_mean > 0.0 && ratio.is_finite() && !(0.67..=1.5).contains(&ratio) {
                    format!(
                        "{} {}× its usual",
                        finding.key,
                        short_number((ratio * 10.0).round() / 10.0)
                    )
                } else {
                    format!(
                        "{} {}σ from its usual",
                        finding.key,
                        short_number(d.deviation_sigma)
                    )
                },
            )
        }
        FindingDetail::TrendBreach(t) => Some(match t.predicted_hours_to_breach {
            Some(hours) => format!(
                "{} to cross {} in {}h",
                finding.key,
                short_number(t.threshold),
                short_number(hours)
            ),
            None => format!("{} past {}", finding.key, short_number(t.threshold)),
        }),
        FindingDetail::LogPattern(_) => None,
    }
}

/// The title from the strongest evidence: the strongest metric, how many
/// more, how many new log shapes.
fn title(incident: &Incident, conditions: usize) -> String {
    let mut metrics = incident
        .members
        .iter()
        .filter_map(|m| metric_phrase(&m.finding));
    let logs = incident
        .members
        .iter()
        .filter(|m| m.finding.log().is_some())
        .count();
    let mut parts = Vec::new();
    let metric_count = incident.members.len() - logs;
    if let Some(first) = metrics.next() {
        parts.push(first);
    }
    if metric_count > 1 {
        parts.push(format!(
            "{} more metric{}",
            metric_count - 1,
            if metric_count > 2 { "s" } else { "" }
        ));
    }
    match logs {
        0 => {}
        1 if metric_count == 0 => {
            let template = incident
                .members
                .iter()
                .find_map(|m| m.finding.log())
                .map(|l| l.template.chars().take(80).collect::<String>())
                .unwrap_or_default();
            parts.push(format!("new log shape \"{template}\""));
        }
        n => parts.push(format!("{n} new log shape{}", if n > 1 { "s" } else { "" })),
    }
    let unlisted = conditions.saturating_sub(incident.members.len());
    if unlisted > 0 {
        parts.push(format!("{unlisted} more conditions"));
    }
    format!("{}: {}", incident.scope, parts.join(", "))
}

impl Incidents {
    pub fn new(config: IncidentsConfig) -> Self {
        Incidents {
            config,
            open: BTreeMap::new(),
            by_key: HashMap::new(),
            by_workload: HashMap::new(),
            by_namespace: HashMap::new(),
            namespace_wide: HashMap::new(),
            closed: VecDeque::new(),
            pending: BTreeMap::new(),
            refused: 0,
        }
    }

    /// Sightings that found `max_open` incidents open and stood alone.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    fn index(&mut self, id: &str, scope: &Scope) {
        if let Some(name) = scope.workload() {
            self.by_workload
                .entry(name.to_string())
                .or_default()
                .insert(id.to_string());
        }
        if let Some(namespace) = scope.namespace() {
            self.by_namespace
                .entry(namespace.to_string())
                .or_default()
                .insert(id.to_string());
            if let Scope::Namespace { namespace } = scope {
                self.namespace_wide
                    .entry(namespace.clone())
                    .or_default()
                    .insert(id.to_string());
            }
        }
    }

    /// Drops `tracked` (id `id`) from the indexes its conditions' scopes put it in.
    fn unindex(&mut self, id: &str, tracked: &Tracked) {
        let scopes = tracked
            .incident
            .members
            .iter()
            .map(|m| &m.scope)
            .chain(tracked.unlisted.iter().map(|(scope, _, _)| scope));
        for scope in scopes {
            let drop_from = |index: &mut HashMap<String, BTreeSet<String>>, name: &str| {
                if let Some(ids) = index.get_mut(name) {
                    ids.remove(id);
                    if ids.is_empty() {
                        index.remove(name);
                    }
                }
            };
            if let Some(name) = scope.workload() {
                drop_from(&mut self.by_workload, name);
            }
            if let Some(namespace) = scope.namespace() {
                drop_from(&mut self.by_namespace, namespace);
                drop_from(&mut self.namespace_wide, namespace);
            }
        }
    }

    /// Open incidents a sighting at `scope`, `at` links to.
    fn linked(&self, key: &str, scope: &Scope, at: DateTime<Utc>) -> BTreeSet<String> {
        let window = chrono(self.config.window);
        let mut candidates = BTreeSet::new();
        if let Some(name) = scope.workload()
            && let Some(ids) = self.by_workload.get(name)
        {
            candidates.extend(ids.iter().cloned());
        }
        if let Some(namespace) = scope.namespace() {
            let index = if matches!(scope, Scope::Namespace { .. }) {
                &self.by_namespace
            } else {
                &self.namespace_wide
            };
            if let Some(ids) = index.get(namespace) {
                candidates.extend(ids.iter().cloned());
            }
        }
        let mut linked: BTreeSet<String> = candidates
            .into_iter()
            .filter(|id| {
                let Some(tracked) = self.open.get(id) else {
                    return false;
                };
                let listed = tracked
                    .incident
                    .members
                    .iter()
                    .map(|m| (&m.scope, m.first_seen, m.last_seen));
                let unlisted = tracked.unlisted.iter().map(|(s, f, l)| (s, *f, *l));
                listed.chain(unlisted).any(|(other, first, last)| {
                    other.meets(scope)
                        && at >= first.checked_sub_signed(window).unwrap_or(first)
                        && at <= last.checked_add_signed(window).unwrap_or(last)
                })
            })
            .collect();
        if let Some(id) = self.by_key.get(key) {
            linked.insert(id.clone());
        }
        linked
    }

    /// A sighting of the condition `key` (a finding placed at `scope`).
    pub fn observe(
        &mut self,
        key: &str,
        finding: &Finding,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Observed {
        let at = finding.detected_at;
        let linked = self.linked(key, &scope, at);
        // The oldest opened survives a merge (ties: the smaller id).
        let Some(survivor) = linked
            .iter()
            .filter_map(|id| self.open.get(id))
            .map(|t| &t.incident)
            .min_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)))
            .map(|incident| incident.id.clone())
        else {
            return self.open_new(key, finding, scope, now);
        };
        let mut moved = Vec::new();
        for absorbed in linked.iter().filter(|id| **id != survivor) {
            moved.extend(self.merge(absorbed, &survivor, now));
        }
        self.add_sighting(&survivor, key, finding, scope);
        self.pending
            .entry(survivor.clone())
            .or_insert(Transition::Updated);
        Observed {
            incident: Some(survivor),
            moved,
        }
    }

    fn open_new(
        &mut self,
        key: &str,
        finding: &Finding,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> Observed {
        if self.open.len() >= self.config.max_open {
            self.refused += 1;
            return Observed::default();
        }
        let at = finding.detected_at;
        let id = uuid::Uuid::new_v5(
            &INCIDENT_ID_NAMESPACE,
            format!("{key}|{}", at.timestamp_millis()).as_bytes(),
        )
        .to_string();
        let incident = Incident {
            id: id.clone(),
            state: IncidentState::Open,
            scope: scope.clone(),
            title: String::new(),
            severity: finding.severity,
            opened_at: now,
            first_seen: at,
            last_seen: at,
            members: Vec::new(),
            members_omitted: 0,
            revision: 0,
        };
        self.open.insert(
            id.clone(),
            Tracked {
                incident,
                firing: HashMap::new(),
                unlisted: Vec::new(),
                quiet_since: None,
            },
        );
        self.add_sighting(&id, key, finding, scope);
        self.pending.insert(id.clone(), Transition::Opened);
        Observed {
            incident: Some(id),
            moved: Vec::new(),
        }
    }

    fn add_sighting(&mut self, id: &str, key: &str, finding: &Finding, scope: Scope) {
        let at = finding.detected_at;
        self.index(id, &scope);
        self.by_key.insert(key.to_string(), id.to_string());
        let Some(tracked) = self.open.get_mut(id) else {
            return;
        };
        tracked.firing.insert(key.to_string(), true);
        tracked.quiet_since = None;
        let incident = &mut tracked.incident;
        incident.first_seen = incident.first_seen.min(at);
        incident.last_seen = incident.last_seen.max(at);
        incident.severity = incident.severity.max(finding.severity);
        incident.scope = std::mem::replace(&mut incident.scope, Scope::Cluster).narrowest(&scope);
        incident.revision = incident.revision.wrapping_add(1);
        let listed = incident.members.iter().position(|m| m.key == key);
        let room = incident.members.len() < MAX_MEMBERS;
        match listed {
            Some(index) => {
                let member = &mut incident.members[index];
                member.first_seen = member.first_seen.min(at);
                if at >= member.last_seen {
                    member.last_seen = at;
                    member.finding = finding.clone().without_evidence();
                    member.scope = scope;
                }
                member.sightings = member.sightings.saturating_add(1);
                if member.finding_ids.len() < MAX_FINDING_IDS
                    && !member.finding_ids.contains(&finding.id)
                {
                    member.finding_ids.push(finding.id.clone());
                }
            }
            None if room => {
                incident.members.push(IncidentMember {
                    key: key.to_string(),
                    scope,
                    first_seen: at,
                    last_seen: at,
                    finding_ids: vec![finding.id.clone()],
                    sightings: 1,
                    finding: finding.clone().without_evidence(),
                });
            }
            None => {
                incident.members_omitted = incident.members_omitted.saturating_add(1);
                tracked.unlisted.push((scope, at, at));
            }
        }
        let conditions = tracked.firing.len();
        let incident = &mut tracked.incident;
        incident
            .members
            .sort_by(|a, b| strength(b).cmp(&strength(a)).then(a.key.cmp(&b.key)));
        incident.title = title(incident, conditions);
    }

    /// Moves `absorbed`'s conditions into `survivor`; returns their keys.
    fn merge(&mut self, absorbed: &str, survivor: &str, now: DateTime<Utc>) -> Vec<String> {
        let Some(mut gone) = self.open.remove(absorbed) else {
            return Vec::new();
        };
        self.unindex(absorbed, &gone);
        for (scope, _, _) in &gone.unlisted {
            self.index(survivor, scope);
        }
        let moved: Vec<String> = gone.firing.keys().cloned().collect();
        for member in std::mem::take(&mut gone.incident.members) {
            let firing = gone.firing.get(&member.key).copied().unwrap_or(false);
            let key = member.key.clone();
            self.add_sighting(survivor, &key, &member.finding, member.scope.clone());
            if let Some(tracked) = self.open.get_mut(survivor) {
                tracked.firing.insert(key.clone(), firing);
                if let Some(m) = tracked.incident.members.iter_mut().find(|m| m.key == key) {
                    m.first_seen = m.first_seen.min(member.first_seen);
                    m.sightings = m
                        .sightings
                        .saturating_add(member.sightings.saturating_sub(1));
                    for id in member.finding_ids {
                        if m.finding_ids.len() < MAX_FINDING_IDS && !m.finding_ids.contains(&id) {
                            m.finding_ids.push(id);
                        }
                    }
                }
            }
        }
        for key in &moved {
            self.by_key.insert(key.clone(), survivor.to_string());
        }
        if let Some(tracked) = self.open.get_mut(survivor) {
            for (key, firing) in &gone.firing {
                tracked.firing.entry(key.clone()).or_insert(*firing);
            }
            tracked.incident.members_omitted = tracked
                .incident
                .members_omitted
                .saturating_add(gone.incident.members_omitted);
            tracked.unlisted.append(&mut gone.unlisted);
        }
        gone.incident.state = IncidentState::Merged {
            at: now,
            into: survivor.to_string(),
        };
        gone.incident.revision = gone.incident.revision.wrapping_add(1);
        self.pending
            .insert(absorbed.to_string(), Transition::Merged);
        self.close(gone.incident);
        moved
    }

    fn close(&mut self, incident: Incident) {
        self.closed.push_back(incident);
        while self.closed.len() > MAX_CLOSED {
            self.closed.pop_front();
        }
    }

    /// The alert of condition `key` resolved at `now`.
    pub fn alert_resolved(&mut self, key: &str, now: DateTime<Utc>) {
        let Some(id) = self.by_key.get(key) else {
            return;
        };
        if let Some(tracked) = self.open.get_mut(id)
            && let Some(firing) = tracked.firing.get_mut(key)
        {
            *firing = false;
            if tracked.firing.values().all(|f| !f) {
                tracked.quiet_since = Some(now);
            }
        }
    }

    /// Resolves incidents quiet for `quiet_for`; forgets closed ones past
    /// `retention`.
    pub fn tick(&mut self, now: DateTime<Utc>, retention: std::time::Duration) {
        let quiet_for = chrono(self.config.quiet_for);
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, t)| t.quiet_since.is_some_and(|since| now - since >= quiet_for))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(mut tracked) = self.open.remove(&id) {
                self.unindex(&id, &tracked);
                for key in tracked.firing.keys() {
                    if self.by_key.get(key) == Some(&id) {
                        self.by_key.remove(key);
                    }
                }
                tracked.incident.state = IncidentState::Resolved { at: now };
                tracked.incident.revision = tracked.incident.revision.wrapping_add(1);
                self.pending.insert(id, Transition::Resolved);
                self.close(tracked.incident);
            }
        }
        let retention = chrono(retention);
        while self
            .closed
            .front()
            .and_then(|i| i.state.closed_at())
            .is_some_and(|at| now - at > retention)
        {
            self.closed.pop_front();
        }
    }

    /// Events since the last call, one per incident (its latest state).
    pub fn take_events(&mut self) -> Vec<IncidentEvent> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .filter_map(|(id, transition)| {
                let incident = self
                    .open
                    .get(&id)
                    .map(|t| t.incident.clone())
                    .or_else(|| self.closed.iter().rev().find(|i| i.id == id).cloned())?;
                Some(IncidentEvent {
                    transition,
                    incident,
                })
            })
            .collect()
    }

    /// Puts back events not published; a newer pending transition of the
    /// same incident wins.
    pub fn requeue(&mut self, events: Vec<IncidentEvent>) {
        for event in events {
            self.pending
                .entry(event.incident.id)
                .or_insert(event.transition);
        }
    }

    /// Open incidents, most severe then most recently seen first, and the
    /// recently closed, most recent first.
    pub fn all(&self) -> impl Iterator<Item = &Incident> {
        self.open
            .values()
            .map(|t| &t.incident)
            .chain(self.closed.iter().rev())
    }

    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.open.values().map(|t| &t.incident)
    }

    /// Open incidents from history (a restart, another replica). Members'
    /// alerts count as firing until `alert_resolved` says otherwise.
    pub fn restore(&mut self, incidents: impl IntoIterator<Item = Incident>) {
        for incident in incidents.into_iter().filter(Incident::is_open) {
            if self.open.contains_key(&incident.id) {
                continue;
            }
            let id = incident.id.clone();
            for member in &incident.members {
                self.index(&id, &member.scope);
                self.by_key.insert(member.key.clone(), id.clone());
            }
            let firing = incident
                .members
                .iter()
                .map(|m| (m.key.clone(), true))
                .collect();
            self.open.insert(
                id,
                Tracked {
                    incident,
                    firing,
                    unlisted: Vec::new(),
                    quiet_since: None,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use inspector_domain::ScopeRules;
    use inspector_domain::scope::NoLookup;
    use proptest::prelude::*;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_680_000 + seconds, 0).unwrap()
    }

    /// A sighting: (condition, namespace index or none, workload index or
    /// none, seconds after the start).
    type Sighting = (u8, Option<u8>, Option<u8>, i64);

    fn finding_of(sighting: &Sighting) -> (String, Finding, Scope) {
        let (condition, namespace, workload, seconds) = *sighting;
        let mut labels = vec![];
        let namespace = namespace.map(|n| format!("ns{n}"));
        let workload = workload.map(|w| format!("w{w}"));
        if let Some(ns) = &namespace {
            labels.push(("namespace", ns.as_str()));
        }
        if let Some(w) = &workload {
            labels.push(("deployment", w.as_str()));
        }
        let finding = inspector_domain::fixtures::trend(
            &format!("m{condition}"),
            &labels,
            "t-0",
            at(seconds),
        );
        let scope = ScopeRules::default().resolve(&finding.labels, &NoLookup);
        (finding.dedup_key(), finding, scope)
    }

    /// The partition of conditions into open incidents.
    fn partition(sightings: &[Sighting]) -> BTreeSet<BTreeSet<String>> {
        let mut incidents = Incidents::new(IncidentsConfig::default());
        for sighting in sightings {
            let (key, finding, scope) = finding_of(sighting);
            incidents.observe(&key, &finding, scope, at(1000));
        }
        let mut seen = BTreeSet::new();
        let groups: BTreeSet<BTreeSet<String>> = incidents
            .open_incidents()
            .map(|i| {
                i.members
                    .iter()
                    .map(|m| m.key.clone())
                    .collect::<BTreeSet<_>>()
            })
            .collect();
        for group in &groups {
            for key in group {
                assert!(seen.insert(key.clone()), "{key} is in two open incidents");
            }
        }
        groups
    }

    fn sighting() -> impl Strategy<Value = Sighting> {
        (
            0u8..12,
            proptest::option::of(0u8..3),
            proptest::option::of(0u8..4),
            0i64..600,
        )
    }

    proptest! {
        /// Within the window, the order of arrival does not change the
        /// grouping, and a condition is in at most one open incident.
        #[test]
        fn arrival_order_does_not_change_the_grouping(
            sightings in proptest::collection::vec(sighting(), 1..40),
            seed in any::<u64>(),
        ) {
            let mut shuffled = sightings.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(partition(&sightings), partition(&shuffled));
        }
    }

    #[test]
    fn a_namespace_wide_finding_joins_the_workloads_of_its_namespace() {
        let sightings = [
            (1, Some(0), Some(1), 0),
            (2, Some(0), Some(2), 10),
            (3, Some(1), Some(1), 20),
        ];
        assert_eq!(partition(&sightings).len(), 3);
        let mut joined = sightings.to_vec();
        joined.push((4, Some(0), None, 30));
        let groups = partition(&joined);
        assert_eq!(groups.len(), 2, "{groups:?}");
    }

    #[test]
    fn sightings_outside_the_window_open_a_new_incident_and_max_open_is_kept() {
        let late = 15 * 60 + 60;
        assert_eq!(
            partition(&[(1, Some(0), Some(1), 0), (2, Some(0), Some(1), late)]).len(),
            2
        );
        let mut incidents = Incidents::new(IncidentsConfig {
            max_open: 2,
            ..IncidentsConfig::default()
        });
        for condition in 0..5 {
            let (key, finding, scope) = finding_of(&(condition, None, None, 0));
            let observed = incidents.observe(&key, &finding, scope, at(0));
            assert_eq!(observed.incident.is_some(), condition < 2);
        }
        assert_eq!(incidents.open_count(), 2);
        assert_eq!(incidents.refused(), 3);
    }
}
