//! Subject names, all under one configurable prefix (default `inspector`).
//! ARCHITECTURE.md lists them; this is the one place that spells them.

use inspector_domain::{Alert, FindingKind};

/// The subjects of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.trim_end_matches('.').to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.findings.<kind>`: durable, one subject per finding kind.
    pub fn findings(&self, kind: FindingKind) -> String {
        format!("{}.findings.{}", self.prefix, kind.subject_token())
    }

    /// `<prefix>.runs.<sensor>`: durable run summaries.
    pub fn runs(&self, sensor: &str) -> String {
        format!("{}.runs.{sensor}", self.prefix)
    }

    /// The subjects the durable stream captures.
    pub fn durable_wildcards(&self) -> Vec<String> {
        vec![
            format!("{}.findings.>", self.prefix),
            format!("{}.runs.>", self.prefix),
        ]
    }

    /// Whether `subject` carries a finding (else, within the stream, a run).
    pub fn is_finding(&self, subject: &str) -> bool {
        subject
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.starts_with(".findings."))
    }

    /// Whether `subject` carries a run summary.
    pub fn is_run(&self, subject: &str) -> bool {
        subject
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.starts_with(".runs."))
    }

    /// `<prefix>.reports`: every assembled inspection report (protobuf).
    pub fn reports(&self) -> String {
        format!("{}.reports", self.prefix)
    }

    /// `<prefix>.alerts.<firing|resolved>.<kind>`: alert transitions
    /// (protobuf `Alert`), durable in the alerts stream.
    pub fn alert_event(&self, alert: &Alert) -> String {
        format!(
            "{}.alerts.{}.{}",
            self.prefix,
            alert.status.as_str(),
            alert.finding.kind().as_str()
        )
    }

    /// What the alerts stream captures: `<prefix>.alerts.>`.
    pub fn alert_wildcard(&self) -> String {
        format!("{}.alerts.>", self.prefix)
    }

    /// `<prefix>.incidents.<opened|updated|resolved|merged>`: incident
    /// transitions (protobuf `Incident`), kept in the incidents stream.
    pub fn incident_event(&self, transition: &str) -> String {
        format!("{}.incidents.{transition}", self.prefix)
    }

    /// What the incidents stream captures: `<prefix>.incidents.>`.
    pub fn incident_wildcard(&self) -> String {
        format!("{}.incidents.>", self.prefix)
    }

    /// `<prefix>.query.context`: request-reply, a protobuf `ContextQuery`
    /// answered with a `ContextReply` (the anomaly context v2).
    pub fn context_query(&self) -> String {
        format!("{}.query.context", self.prefix)
    }

    /// `<prefix>.query.incidents`: request-reply, answers the open and
    /// recently closed incidents (JSON array).
    pub fn incidents_query(&self) -> String {
        format!("{}.query.incidents", self.prefix)
    }

    /// `<prefix>.query.report`: request-reply, answers the latest report (protobuf).
    pub fn report_query(&self) -> String {
        format!("{}.query.report", self.prefix)
    }

    /// `<prefix>.query.anomaly-context`: request-reply, a JSON query
    /// (`ContextQuery`'s fields; empty: the defaults) answered with the
    /// anomaly context v2 as JSON (`{"error": ...}` for a bad field).
    pub fn anomaly_context_query(&self) -> String {
        format!("{}.query.anomaly-context", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = Subjects::new("inspector.");
        assert_eq!(
            s.findings(FindingKind::TrendBreach),
            "inspector.findings.trend"
        );
        assert_eq!(s.runs("trend-predictor"), "inspector.runs.trend-predictor");
        assert!(s.is_finding("inspector.findings.logs"));
        assert!(!s.is_finding("inspector.runs.x"));
        assert!(s.is_run("inspector.runs.x"));
        assert!(!s.is_run("other.runs.x"));
    }
}
