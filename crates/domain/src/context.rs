//! The anomaly context (version 2): the decision investigator's question
//! (a scope, a time, a window) and the aggregator's answer, ranked by
//! relevance to that scope. JSON over HTTP mirrors the protobuf message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scope::{Scope, ScopeMatch};
use crate::{Finding, Incident, SensorStatus};

/// The version this crate writes.
pub const CONTEXT_VERSION: u32 = 2;

/// What was anomalous around a scope in the window before `at`. Unset
/// fields take the aggregator's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContextQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u32>,
}

/// One finding in the answer, and why it is there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextItem {
    pub scope_match: ScopeMatch,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    pub finding: Finding,
}

/// The answer: findings most relevant first, the incidents touching the
/// scope, and the sensors not to trust blindly right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyContext {
    pub version: u32,
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    pub shadow: bool,
    pub items: Vec<ContextItem>,
    /// Items matching before the cap.
    pub total_items: u32,
    pub incidents: Vec<Incident>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensor_problems: Vec<SensorStatus>,
}

/// A context query's reply: the context, or why the query was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextReply {
    Context(Box<AnomalyContext>),
    /// The field at fault and why, as in the HTTP 400.
    Refused(String),
}
