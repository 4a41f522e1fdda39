//! Incidents: findings whose scopes meet within a window, told as one story.
//! The aggregator's core groups them (`inspector-aggregator::incidents`);
//! this is the shape they are served, stored and published in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scope::Scope;
use crate::{Finding, Severity};

/// Where an incident is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    /// Every alert in it resolved, and it stayed quiet for `quiet_for`.
    Resolved {
        at: DateTime<Utc>,
    },
    /// A finding linked it with an older incident, which absorbed it.
    Merged {
        at: DateTime<Utc>,
        into: String,
    },
}

impl IncidentState {
    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Resolved { .. } => "resolved",
            IncidentState::Merged { .. } => "merged",
        }
    }

    pub fn closed_at(&self) -> Option<DateTime<Utc>> {
        match self {
            IncidentState::Open => None,
            IncidentState::Resolved { at } | IncidentState::Merged { at, .. } => Some(*at),
        }
    }
}

/// One condition (dedup key) inside an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentMember {
    pub key: String,
    pub scope: Scope,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Ids of its sightings, oldest first, capped.
    pub finding_ids: Vec<String>,
    /// All sightings, listed or not.
    pub sightings: u32,
    /// The latest sighting.
    pub finding: Finding,
}

/// Findings whose scopes meet within the incident window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable: from the opening condition and its first sighting.
    pub id: String,
    #[serde(flatten)]
    pub state: IncidentState,
    pub scope: Scope,
    /// Built from the strongest evidence.
    pub title: String,
    pub severity: Severity,
    pub opened_at: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Strongest first.
    pub members: Vec<IncidentMember>,
    #[serde(default)]
    pub members_omitted: u32,
    /// Bumped by every change.
    pub revision: u32,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.state == IncidentState::Open
    }

    /// Ids of every listed sighting.
    pub fn finding_ids(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .flat_map(|m| m.finding_ids.iter().map(String::as_str))
    }

    /// The `Nats-Msg-Id` of this revision's event.
    pub fn event_id(&self) -> String {
        format!("incident|{}|{}", self.id, self.revision)
    }
}
