//! `inspector scenario serve`: the demo scenario as a live local stack's
//! data, so `docker compose up` shows findings within minutes instead of
//! after a week of history.
//!
//! At start it picks "now" as the scenario's anchor and writes the seven
//! days before it as OpenMetrics (for `promtool tsdb create-blocks-from
//! openmetrics`, which Prometheus' start-up in compose runs), then serves the
//! same series live on `/metrics` (continuing each shape past the anchor) and
//! appends the checkout service's log lines to a file that log-pattern
//! follows: ordinary lines every second and, after a warm-up, a line shape
//! never seen before every `novel_every`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use crate::scenario::{Scenario, checkout_log_lines};

/// What `inspector scenario serve` does (its command-line options).
#[derive(Debug, Clone, clap::Args)]
pub struct StackOptions {
    /// Address of the live /metrics.
    #[arg(long, default_value = "127.0.0.1:9400")]
    pub listen: SocketAddr,
    /// Where to write the history (OpenMetrics), atomically, before serving.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Days of history.
    #[arg(long, default_value_t = 7)]
    pub history_days: u32,
    /// Step between history samples.
    #[arg(long, default_value = "1m", value_parser = crate::humantime_duration)]
    pub history_step: Duration,
    /// Log file to append the checkout service's lines to.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// How often a never-seen line shape appears in the log.
    #[arg(long, default_value = "90s", value_parser = crate::humantime_duration)]
    pub novel_every: Duration,
}

/// Label values escaped for the text formats.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// One series' label text and its `(unix seconds, value)` samples.
type LabelledSamples = (String, Vec<(i64, f64)>);

/// The scenario's `days` before `anchor` at `step`, as OpenMetrics with
/// timestamps (one family after the other, samples in time order).
pub fn history_openmetrics(
    scenario: &Scenario,
    anchor: DateTime<Utc>,
    days: u32,
    step: Duration,
) -> String {
    let step_s = step.as_secs().max(1) as i64;
    let points = i64::from(days) * 86_400 / step_s;
    let start = anchor.timestamp() - points * step_s;
    let mut families: std::collections::BTreeMap<&str, Vec<LabelledSamples>> = Default::default();
    for k in 0..=points {
        let t = start + k * step_s;
        let at = DateTime::from_timestamp(t, 0).unwrap_or(anchor);
        for (metric, labels, value) in scenario.values_at(anchor, at) {
            let series = families.entry(metric).or_default();
            let key = label_text(labels);
            match series.iter_mut().find(|(l, _)| *l == key) {
                Some((_, samples)) => samples.push((t, value)),
                None => series.push((key, vec![(t, value)])),
            }
        }
    }
    let mut out = String::new();
    for (metric, series) in families {
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (labels, samples) in series {
            for (t, value) in samples {
                let _ = writeln!(out, "{metric}{labels} {value} {t}");
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The scenario's current values in the Prometheus text format.
pub fn live_text(scenario: &Scenario, anchor: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut last = "";
    for (metric, labels, value) in scenario.values_at(anchor, now) {
        if metric != last {
            let _ = writeln!(out, "# HELP {metric} Demo scenario series.");
            let _ = writeln!(out, "# TYPE {metric} gauge");
            last = metric;
        }
        let _ = writeln!(out, "{metric}{} {value}", label_text(labels));
    }
    out
}

/// Line shapes the checkout service never printed during its warm-up.
fn novel_line(n: u64) -> String {
    match n % 4 {
        0 => format!(
            "java.net.SocketTimeoutException: Read timed out calling payments at 10.0.4.{}:8443",
            17 + n % 5
        ),
        1 => format!(
            "circuit breaker OPEN for payments after {} consecutive failures",
            5 + n % 3
        ),
        2 => format!(
            "connection pool exhausted: {} of 50 connections busy, {} waiting",
            50,
            10 + n
        ),
        _ => format!(
            "retry budget exceeded for payments, dropping request {}",
            9000 + n
        ),
    }
}

async fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, text)
        .await
        .with_context(|| format!("writing {}", partial.display()))?;
    tokio::fs::rename(&partial, path)
        .await
        .with_context(|| format!("renaming to {}", path.display()))
}

async fn write_log(path: PathBuf, novel_every: Duration, shutdown: CancellationToken) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(file) => file,
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "cannot open the scenario log");
            return;
        }
    };
    let ordinary = checkout_log_lines()[..40].to_vec();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let started = tokio::time::Instant::now();
    let (mut written, mut novel) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let due = started.elapsed().as_secs() / novel_every.as_secs().max(1);
        let line = if written >= ordinary.len() as u64 && novel < due {
            novel += 1;
            novel_line(novel)
        } else {
            ordinary[(written % ordinary.len() as u64) as usize].clone()
        };
        written += 1;
        if let Err(error) = file.write_all(format!("{line}\n").as_bytes()).await {
            tracing::error!(%error, "writing the scenario log failed");
            return;
        }
    }
}

/// Runs until `shutdown`.
pub async fn serve(options: StackOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let scenario = Arc::new(Scenario::bundled());
    let anchor = Utc::now();
    if let Some(path) = &options.history {
        let text = history_openmetrics(
            &scenario,
            anchor,
            options.history_days,
            options.history_step,
        );
        write_atomically(path, &text).await?;
        tracing::info!(path = %path.display(), bytes = text.len(), "history written");
    }
    if let Some(path) = options.log.clone() {
        tokio::spawn(write_log(path, options.novel_every, shutdown.clone()));
    }
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let scenario = scenario.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            inspector_runtime::ops::PROMETHEUS_TEXT,
                        )],
                        live_text(&scenario, anchor, Utc::now()),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    tracing::info!(listen = %options.listen, "scenario exporter serving");
    inspector_runtime::serve_http(listener, app, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_valid_openmetrics_and_backfills() {
        let anchor = DateTime::from_timestamp(1_795_680_000, 0).unwrap();
        let text = history_openmetrics(&Scenario::bundled(), anchor, 1, Duration::from_secs(300));
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# TYPE http_requests_per_second gauge"));
        // 1 day at 5 min: 289 points per series, 7 series.
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, 289 * 7);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("history.om");
        std::fs::write(&input, &text).unwrap();
        let promtool = inspector_test_harness::require_binary("promtool", "prometheus");
        let output = std::process::Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn live_values_continue_the_history() {
        let scenario = Scenario::bundled();
        let anchor = DateTime::from_timestamp(1_795_680_000, 0).unwrap();
        let later = anchor + chrono::Duration::hours(1);
        let disk = |t| {
            scenario
                .values_at(anchor, t)
                .into_iter()
                .find(|(m, l, _)| *m == "disk_used_percent" && l["mount"] != "/")
                .unwrap()
                .2
        };
        // Filling at 10 points an hour, past the anchor too.
        assert!((disk(later) - disk(anchor) - 10.0).abs() < 1.0);
        let text = live_text(&scenario, anchor, later);
        inspector_test_harness::promtool_check_metrics(&text).unwrap();
    }

    #[test]
    fn novel_lines_differ_from_the_warm_up() {
        let ordinary = checkout_log_lines();
        for n in 1..=4 {
            assert!(!ordinary[..40].contains(&novel_line(n)));
        }
    }
}
