//! Plain-text rendering of an inspection report for a terminal.

use std::fmt::Write as _;

use inspector_domain::{Finding, InspectionReport};

/// The report as an operator reads it: headline counts, findings by
/// severity, then sensor health.
pub fn render_report(report: &InspectionReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Inspection report {} → {}{}",
        report.window_start.format("%Y-%m-%d %H:%M:%S"),
        report.window_end.format("%H:%M:%S UTC"),
        if report.shadow {
            "  [SHADOW MODE: no alerts raised]"
        } else {
            ""
        }
    );
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  findings: {} ({})   duplicates suppressed: {}   alerts: {}   malformed: {}",
        report.findings.len(),
        counts.join(", "),
        report.duplicates_suppressed,
        report.alerts_published,
        report.malformed_messages
    );
    let _ = writeln!(
        out,
        "  dedup: {}{}",
        report.dedup_backend,
        if report.dedup_degraded {
            "  (degraded)"
        } else {
            ""
        }
    );
    let mut findings: Vec<&Finding> = report.findings.iter().collect();
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.key.cmp(&b.key)));
    if !findings.is_empty() {
        let _ = writeln!(out, "\n  {:<9} {:<15} WHAT", "SEVERITY", "KIND");
    }
    for finding in findings {
        let _ = writeln!(
            out,
            "  {:<9} {:<15} {}",
            finding.severity.to_string().to_uppercase(),
            finding.kind(),
            finding.series_name()
        );
        let _ = writeln!(out, "  {:<25} {}", "", finding.description);
    }
    // Incidents that join more than one condition tell a story; single
    // ones are the findings above.
    let mut stories: Vec<&inspector_domain::Incident> = report
        .incidents
        .iter()
        .filter(|i| i.members.len() + i.members_omitted as usize > 1)
        .collect();
    stories.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last_seen.cmp(&a.last_seen))
    });
    if !stories.is_empty() {
        let _ = writeln!(out, "\n  incidents ({} in all):", report.incidents.len());
    }
    for incident in stories {
        let _ = writeln!(
            out,
            "    {:<8} {:<9} {}  [{} conditions, id {}]",
            incident.state.as_str().to_uppercase(),
            incident.severity.to_string().to_uppercase(),
            incident.title,
            incident.members.len() + incident.members_omitted as usize,
            inspector_aggregator::context::short_id(&incident.id)
        );
    }
    let _ = writeln!(out, "\n  sensors:");
    for sensor in &report.sensors {
        let state = if !sensor.enabled {
            "off"
        } else if sensor.stale {
            "STALE"
        } else {
            "ok"
        };
        let last = sensor
            .last_run_at
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        let _ = writeln!(
            out,
            "    {:<18} {:<5} last run {:<8} errors {}{}{}",
            sensor.sensor,
            state,
            last,
            sensor.errors.len(),
            if sensor.warming_up > 0 {
                format!("  warming up {}", sensor.warming_up)
            } else {
                String::new()
            },
            if sensor.shadow { "  (shadow)" } else { "" }
        );
        for error in sensor.errors.iter().take(5) {
            let _ = writeln!(out, "      ! {}: {}", error.subject, error.message);
        }
    }
    out
}
