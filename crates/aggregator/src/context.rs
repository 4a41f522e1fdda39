//! The anomaly context (version 2), the decision investigator's call: a
//! query for a scope and a time is checked here (a bad field is named),
//! answered from the core's snapshot, and rendered as the typed document
//! (JSON or protobuf) or as a plain-text block for an LLM prompt that fits
//! a token budget (cl100k_base tokens), most relevant evidence first.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use inspector_domain::context::{AnomalyContext, CONTEXT_VERSION, ContextItem, ContextQuery};
use inspector_domain::{Finding, FindingDetail, Incident, ScopeMatch, SensorStatus};
use serde::Deserialize;

use crate::core::ScopedSnapshot;
use crate::incidents::short_number;

/// Longest window a query may ask for.
pub const MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);
/// Most items a query may ask for.
pub const MAX_ITEMS: u32 = 1000;
/// Token budget of a prompt block unless the query says.
pub const DEFAULT_MAX_TOKENS: usize = 1500;
/// The token budget a query may ask for.
pub const MAX_TOKENS: std::ops::RangeInclusive<usize> = 100..=100_000;
/// Longest namespace or workload name (a Kubernetes DNS subdomain).
const MAX_NAME: usize = 253;

/// A query checked and with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub max_items: usize,
}

/// A query field that cannot be answered: the HTTP 400, the NATS error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct QueryError {
    pub field: &'static str,
    pub problem: String,
}

fn bad(field: &'static str, problem: impl Into<String>) -> QueryError {
    QueryError {
        field,
        problem: problem.into(),
    }
}

/// What the answer looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Prompt { max_tokens: usize },
}

/// The HTTP query string: `namespace`, `workload`, `at` (RFC 3339 or Unix
/// seconds; default now), `window` (e.g. `30m`; default the configured
/// context window), `max_items`, `format` (`json` or `prompt`), `max_tokens`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextParams {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    pub at: Option<String>,
    pub window: Option<String>,
    pub max_items: Option<String>,
    pub format: Option<String>,
    pub max_tokens: Option<String>,
}

impl ContextParams {
    /// The query and the format, or the field at fault.
    pub fn parse(&self) -> Result<(ContextQuery, Format), QueryError> {
        let at = match self.at.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_time(text).ok_or_else(|| {
                bad(
                    "at",
                    format!("{text:?} is neither RFC 3339 nor Unix seconds"),
                )
            })?),
        };
        let window_seconds = match self.window.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                humantime::parse_duration(text)
                    .map_err(|e| bad("window", format!("{text:?}: {e}")))?
                    .as_secs(),
            ),
        };
        let number =
            |field: &'static str, text: &Option<String>| -> Result<Option<u64>, QueryError> {
                match text.as_deref().map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(text) => text
                        .parse::<u64>()
                        .map(Some)
                        .map_err(|_| bad(field, format!("{text:?} is not a whole number"))),
                }
            };
        let max_items =
            number("max_items", &self.max_items)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        if max_items == Some(0) {
            return Err(bad("max_items", "must be at least 1"));
        }
        let format = match self.format.as_deref().map(str::trim) {
            None | Some("") | Some("json") => {
                if self.max_tokens.is_some() {
                    return Err(bad("max_tokens", "only with format=prompt"));
                }
                Format::Json
            }
            Some("prompt") => {
                let max_tokens = number("max_tokens", &self.max_tokens)?
                    .map_or(DEFAULT_MAX_TOKENS, |n| {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    });
                if !MAX_TOKENS.contains(&max_tokens) {
                    return Err(bad(
                        "max_tokens",
                        format!(
                            "{max_tokens} is outside {}..={}",
                            MAX_TOKENS.start(),
                            MAX_TOKENS.end()
                        ),
                    ));
                }
                Format::Prompt { max_tokens }
            }
            Some(other) => return Err(bad("format", format!("{other:?}: use json or prompt"))),
        };
        let name = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
        };
        Ok((
            ContextQuery {
                namespace: name(&self.namespace),
                workload: name(&self.workload),
                at,
                window_seconds: window_seconds.map(|s| s.max(1)),
                max_items,
            },
            format,
        ))
    }
}

/// RFC 3339, or Unix seconds (fractions allowed).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let seconds: f64 = text.parse().ok()?;
    if !seconds.is_finite() {
        return None;
    }
    DateTime::from_timestamp_millis((seconds * 1000.0) as i64)
}

impl Query {
    /// Checks `query` against what the aggregator can answer, with the
    /// configured window and cap as defaults.
    pub fn resolve(
        query: &ContextQuery,
        default_window: std::time::Duration,
        default_max_items: usize,
        now: DateTime<Utc>,
    ) -> Result<Query, QueryError> {
        for (field, value) in [
            ("namespace", &query.namespace),
            ("workload", &query.workload),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_NAME) {
                return Err(bad(field, format!("longer than {MAX_NAME} bytes")));
            }
        }
        let at = query.at.unwrap_or(now);
        let earliest = now - chrono::Duration::days(30);
        let latest = now + chrono::Duration::minutes(5);
        if at < earliest || at > latest {
            return Err(bad(
                "at",
                format!("{at} is not within the last 30 days (now is {now})"),
            ));
        }
        let window = match query.window_seconds {
            None => default_window,
            Some(0) => return Err(bad("window", "must be positive")),
            Some(seconds) if seconds > MAX_WINDOW.as_secs() => {
                return Err(bad(
                    "window",
                    format!(
                        "{seconds}s is longer than {}s (7 days)",
                        MAX_WINDOW.as_secs()
                    ),
                ));
            }
            Some(seconds) => std::time::Duration::from_secs(seconds),
        };
        let max_items = match query.max_items {
            None => default_max_items,
            Some(n) if n > MAX_ITEMS => {
                return Err(bad("max_items", format!("{n} is more than {MAX_ITEMS}")));
            }
            Some(n) => n as usize,
        };
        Ok(Query {
            namespace: query.namespace.clone(),
            workload: query.workload.clone(),
            at,
            from: at - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1)),
            max_items,
        })
    }
}

/// The context document from the core's snapshot.
pub fn build(
    snapshot: ScopedSnapshot,
    sensors: &[SensorStatus],
    shadow: bool,
    query: &Query,
    now: DateTime<Utc>,
) -> AnomalyContext {
    AnomalyContext {
        version: CONTEXT_VERSION,
        generated_at: now,
        from: query.from,
        to: query.at,
        namespace: query.namespace.clone(),
        workload: query.workload.clone(),
        shadow,
        total_items: u32::try_from(snapshot.total_items).unwrap_or(u32::MAX),
        items: snapshot
            .items
            .into_iter()
            .map(|(scope_match, placed)| ContextItem {
                scope_match,
                scope: placed.scope,
                incident_id: placed.incident,
                finding: placed.finding,
            })
            .collect(),
        incidents: snapshot.incidents,
        sensor_problems: sensors
            .iter()
            .filter(|s| s.enabled && (s.stale || !s.errors.is_empty()))
            .cloned()
            .map(|mut s| {
                s.errors.truncate(10);
                s
            })
            .collect(),
    }
}

/// The unit a metric's name implies (Prometheus naming conventions).
fn unit(metric: &str) -> &'static str {
    let suffixes: [(&str, &str); 9] = [
        ("_per_second", "/s"),
        ("_seconds_total", "s"),
        ("_seconds", "s"),
        ("_bytes_total", "B"),
        ("_bytes", "B"),
        ("_percent", "%"),
        ("_ratio", "(ratio)"),
        ("_celsius", "°C"),
        ("_total", "(count)"),
    ];
    suffixes
        .iter()
        .find(|(suffix, _)| metric.ends_with(suffix))
        .map_or("", |(_, unit)| unit)
}

fn with_unit(value: f64, metric: &str) -> String {
    let unit = unit(metric);
    match unit {
        "" => short_number(value),
        "%" | "/s" | "°C" => format!("{}{unit}", short_number(value)),
        _ => format!("{} {unit}", short_number(value)),
    }
}

fn clock(time: DateTime<Utc>) -> String {
    time.format("%H:%M:%SZ").to_string()
}

fn scope_tag(m: ScopeMatch) -> &'static str {
    match m {
        ScopeMatch::Workload => "workload",
        ScopeMatch::Namespace => "namespace",
        ScopeMatch::Cluster => "cluster",
    }
}

/// One line for one finding: what, where, how far off, when.
fn finding_line(finding: &Finding) -> String {
    let series = finding.series_name();
    let key = &finding.key;
    let what = match &finding.detail {
        FindingDetail::DynamicAnomaly(d) => format!(
            "{series} = {} vs usual {} ({:+.1}σ)",
            with_unit(d.current_value, key),
            with_unit(d.expected_mean, key),
            d.deviation_sigma
        ),
        FindingDetail::TrendBreach(t) => {
            let when = match t.predicted_hours_to_breach {
                Some(hours) => format!(
                    "crosses {} in {}h",
                    with_unit(t.threshold, key),
                    short_number(hours)
                ),
                None => format!("past {}", with_unit(t.threshold, key)),
            };
            format!(
                "{series} = {}, {when} (slope {}/h, R² {:.2})",
                with_unit(t.current_value, key),
                with_unit(t.slope_per_hour, key),
                t.r_squared
            )
        }
        FindingDetail::LogPattern(l) => {
            let place = [
                finding.labels.get("namespace"),
                finding.labels.get("workload"),
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("/");
            format!(
                "new log shape in {place}: \"{}\"",
                one_line(&l.template, 200)
            )
        }
    };
    format!(
        "{} {} at {}: {what}",
        finding.severity,
        finding.kind(),
        clock(finding.detected_at)
    )
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        format!("{flat}…")
    } else {
        flat
    }
}

fn incident_line(incident: &Incident) -> String {
    format!(
        "Incident {} ({}, {}, {} conditions, {}–{}): {}",
        short_id(&incident.id),
        incident.state.as_str(),
        incident.severity,
        incident.members.len() + incident.members_omitted as usize,
        clock(incident.first_seen),
        clock(incident.last_seen),
        one_line(&incident.title, 300)
    )
}

/// The first 8 characters of an id (ids from history are any text: never
/// cut inside a character).
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(end, _)| &id[..end])
}

/// Tokens of `text` in OpenAI's cl100k_base encoding.
pub fn count_tokens(text: &str) -> usize {
    tiktoken_rs::cl100k_base_singleton()
        .encode_ordinary(text)
        .len()
}

/// The context as a plain-text block for an LLM prompt, at most
/// `max_tokens` cl100k_base tokens: the heading, then incidents touching
/// the scope and findings, most relevant first, one line each, whole lines
/// only; what did not fit is counted on the last line.
pub fn render_prompt(context: &AnomalyContext, max_tokens: usize) -> String {
    let scope = match (&context.namespace, &context.workload) {
        (Some(ns), Some(w)) => format!("{ns}/{w}"),
        (Some(ns), None) => ns.clone(),
        (None, Some(w)) => w.clone(),
        (None, None) => "the whole cluster".into(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Anomalies around {scope} from {} to {} (proactive-inspector, {} matching finding{}, {} incident{}):",
        context.from.format("%Y-%m-%dT%H:%M:%SZ"),
        context.to.format("%Y-%m-%dT%H:%M:%SZ"),
        context.total_items,
        if context.total_items == 1 { "" } else { "s" },
        context.incidents.len(),
        if context.incidents.len() == 1 {
            ""
        } else {
            "s"
        },
    );
    let mut lines: Vec<(String, &'static str)> = Vec::new();
    for incident in &context.incidents {
        lines.push((incident_line(incident), "incident"));
    }
    for item in &context.items {
        let incident = item
            .incident_id
            .as_deref()
            .map(|id| format!(" [incident {}]", short_id(id)))
            .unwrap_or_default();
        lines.push((
            format!(
                "- [{}] {}{incident}",
                scope_tag(item.scope_match),
                finding_line(&item.finding)
            ),
            "finding",
        ));
    }
    for sensor in &context.sensor_problems {
        let mut line = format!("Sensor {}: ", sensor.sensor);
        if sensor.stale {
            line.push_str("stale (its findings may be missing); ");
        }
        if let Some(error) = sensor.errors.first() {
            let _ = write!(
                line,
                "{} errors, e.g. {}: {}",
                sensor.errors.len(),
                error.subject,
                one_line(&error.message, 160)
            );
        }
        lines.push((line, "sensor note"));
    }
    let omitted_beyond = (context.total_items as usize).saturating_sub(context.items.len());
    // Room for the closing count line, whatever it says.
    let closing_reserve = 24;
    let mut used = count_tokens(&out);
    let mut cut: std::collections::BTreeMap<&str, usize> = Default::default();
    for (line, what) in lines {
        let cost = count_tokens(&line) + 1;
        if cut.is_empty() && used + cost + closing_reserve <= max_tokens {
            out.push_str(&line);
            out.push('\n');
            used += cost;
        } else {
            *cut.entry(what).or_default() += 1;
        }
    }
    if omitted_beyond > 0 {
        *cut.entry("finding").or_default() += omitted_beyond;
    }
    if !cut.is_empty() {
        let parts: Vec<String> = cut
            .iter()
            .map(|(what, n)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
            .collect();
        let _ = writeln!(
            out,
            "(not shown for the token budget: {})",
            parts.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use inspector_domain::Scope;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ContextParams {
        let json: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::from_value(json.into()).unwrap()
    }

    fn field_of(pairs: &[(&str, &str)]) -> &'static str {
        let now = Utc::now();
        params(pairs)
            .parse()
            .and_then(|(q, _)| Query::resolve(&q, MAX_WINDOW / 7 / 24, 50, now))
            .unwrap_err()
            .field
    }

    #[test]
    fn absurd_parameters_name_their_field() {
        assert_eq!(field_of(&[("window", "100y")]), "window");
        assert_eq!(field_of(&[("window", "soon")]), "window");
        assert_eq!(
            field_of(&[("format", "prompt"), ("max_tokens", "0")]),
            "max_tokens"
        );
        assert_eq!(field_of(&[("max_tokens", "400")]), "max_tokens");
        assert_eq!(field_of(&[("at", "yesterday")]), "at");
        assert_eq!(field_of(&[("at", "1")]), "at");
        assert_eq!(field_of(&[("format", "xml")]), "format");
        assert_eq!(field_of(&[("max_items", "0")]), "max_items");
        assert_eq!(field_of(&[("max_items", "5000")]), "max_items");
        let (query, format) = params(&[
            ("namespace", "shop"),
            ("format", "prompt"),
            ("window", "30m"),
        ])
        .parse()
        .unwrap();
        assert_eq!(
            format,
            Format::Prompt {
                max_tokens: DEFAULT_MAX_TOKENS
            }
        );
        assert_eq!(query.window_seconds, Some(1800));
        assert_eq!(query.namespace.as_deref(), Some("shop"));
    }

    fn context(findings: usize) -> AnomalyContext {
        let now = DateTime::from_timestamp(1_795_680_000, 0).unwrap();
        let items = (0..findings)
            .map(|i| {
                let finding = if i % 2 == 0 {
                    inspector_domain::fixtures::anomaly(
                        &format!("http_requests_per_second_{i}"),
                        "b-0",
                        now,
                    )
                } else {
                    inspector_domain::fixtures::log_pattern(
                        "checkout",
                        &format!("payment timeout after <*> ms #{i}"),
                        now,
                    )
                };
                ContextItem {
                    scope_match: ScopeMatch::Workload,
                    scope: Scope::Cluster,
                    incident_id: Some("0123456789abcdef".into()),
                    finding,
                }
            })
            .collect();
        AnomalyContext {
            version: CONTEXT_VERSION,
            generated_at: now,
            from: now - chrono::Duration::hours(1),
            to: now,
            namespace: Some("shop".into()),
            workload: Some("checkout".into()),
            shadow: false,
            items,
            total_items: findings as u32 + 7,
            incidents: vec![],
            sensor_problems: vec![],
        }
    }

    /// Within budget, whole lines only, the most relevant kept, the cut counted.
    #[test]
    fn the_prompt_fits_its_budget_in_whole_lines() {
        let full = context(200);
        for budget in [100, 150, 400, 1500, 5000] {
            let text = render_prompt(&full, budget);
            assert!(
                count_tokens(&text) <= budget,
                "{budget}: {} tokens",
                count_tokens(&text)
            );
            assert!(text.ends_with('\n'));
            let last = text.lines().last().unwrap();
            assert!(
                last.starts_with("(not shown for the token budget:"),
                "{last}"
            );
            let shown = text.lines().filter(|l| l.starts_with("- ")).count();
            assert!(
                last.contains(&format!("{} findings", 207 - shown)),
                "{last}"
            );
            for line in text.lines().filter(|l| l.starts_with("- ")) {
                assert!(
                    line.ends_with("[incident 01234567]"),
                    "cut mid-line: {line}"
                );
            }
        }
        let first = render_prompt(&full, 400);
        assert!(
            first
                .lines()
                .nth(1)
                .unwrap()
                .contains("http_requests_per_second_0 = 10 vs usual 1 (+9.0σ)"),
            "{first}"
        );
        let small = render_prompt(&context(2), 1500);
        assert!(
            small
                .lines()
                .any(|l| l
                    .contains("new log shape in checkout: \"payment timeout after <*> ms #1\"")),
            "{small}"
        );
        assert!(
            small.contains("7 findings"),
            "the 7 over max_items are counted: {small}"
        );
    }

    #[test]
    fn short_ids_never_split_a_character() {
        assert_eq!(short_id("0123456789"), "01234567");
        assert_eq!(short_id("ééééééééé"), "éééééééé");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn units_come_from_the_metric_name() {
        assert_eq!(with_unit(310.0, "http_requests_per_second"), "310/s");
        assert_eq!(with_unit(0.25, "request_duration_seconds"), "0.25 s");
        assert_eq!(with_unit(82.5, "disk_used_percent"), "82.5%");
        assert_eq!(with_unit(1.5e9, "memory_bytes"), "1500000000 B");
        assert_eq!(with_unit(3.0, "queue_depth"), "3");
    }
}
