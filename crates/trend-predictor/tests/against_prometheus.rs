//! The trend predictor against a real Prometheus with backfilled history.

use std::time::Duration;

use chrono::{DateTime, Utc};
use inspector_prometheus::{PrometheusClient, PrometheusConfig};
use inspector_test_harness::{OpenMetrics, PrometheusServer};
use inspector_trend::{BreachRule, Direction};
use inspector_trend_predictor::{TrendPredictorConfig, judge_series, run_pass};

/// Deterministic jitter in [-1, 1].
fn jitter(i: i64) -> f64 {
    ((i as f64) * 12.9898).sin() * 0.5 + ((i as f64) * 78.233).cos() * 0.5
}

/// Evaluation time: a whole minute, comfortably in the past.
fn eval_time() -> i64 {
    Utc::now().timestamp() / 60 * 60 - 600
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn config(prometheus: &PrometheusServer, metrics_yaml: &str) -> TrendPredictorConfig {
    let yaml = format!(
        "lookback: 59m\nstep: 60s\nmin_samples: 10\nprometheus: {{url: '{}'}}\nmetrics:\n{metrics_yaml}",
        prometheus.url()
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let config: TrendPredictorConfig =
        inspector_runtime::load_config(Some(file.path()), []).unwrap();
    config.validate().unwrap();
    config
}

/// The fitted value must agree with Prometheus' own `predict_linear` on the
/// same samples and evaluation time.
#[tokio::test]
async fn fit_agrees_with_predict_linear() {
    inspector_runtime::install_crypto_provider();
    let t = eval_time();
    let series = |slope: f64, base: f64, noise: f64| -> Vec<(i64, f64)> {
        (0..=180)
            .map(|i| {
                let ts = t - 10_800 + i * 60;
                (ts, base + slope * (i as f64) + noise * jitter(i))
            })
            .collect()
    };
    let text = OpenMetrics::new()
        .gauge(
            "usage",
            &[
                (&[("host", "a")], series(0.37, 1234.5, 3.0)),
                (&[("host", "b")], series(-0.02, 0.5, 0.01)),
                (&[("host", "c")], series(1e-3, 1e6, 250.0)),
            ],
        )
        .finish();
    let prometheus = PrometheusServer::start_with_openmetrics(&text);
    let client = PrometheusClient::new(PrometheusConfig::new(prometheus.url())).unwrap();

    // The trend predictor's own query: 59 minutes of history at 60 s steps
    // lands exactly on the 60 raw samples that `usage[59m30s]` selects at t.
    let history = client
        .query_range("usage", at(t - 3540), at(t), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
    let rule = BreachRule {
        threshold: 1e12,
        direction: Direction::Above,
        horizon_hours: 4.0,
    };
    let mut worst = 0.0_f64;
    for horizon_s in [0_i64, 600, 3600, 4 * 3600, 86_400] {
        let reference = client
            .query(
                &format!("predict_linear(usage[59m30s], {horizon_s})"),
                at(t),
            )
            .await
            .unwrap();
        assert_eq!(reference.len(), 3);
        for series in &history {
            assert_eq!(series.samples.len(), 60);
            let verdict = judge_series(series, &rule, at(t), 10).unwrap();
            let ours = verdict.assessment.fit.value_at((t + horizon_s) * 1000);
            let theirs = reference
                .iter()
                .find(|r| r.labels["host"] == series.labels["host"])
                .unwrap()
                .samples[0]
                .value;
            let relative = ((ours - theirs) / theirs).abs();
            worst = worst.max(relative);
            assert!(
                relative <= 1e-9,
                "host {} horizon {horizon_s}s: ours {ours} vs predict_linear {theirs} (relative {relative:e})",
                series.labels["host"]
            );
        }
    }
    println!("worst relative difference from predict_linear: {worst:e}");
}

/// One pass over several metrics: every series of a multi-series result is
/// fitted, and broken metrics are errors that do not stop the others.
#[tokio::test]
async fn one_pass_reports_breaches_and_survives_broken_metrics() {
    inspector_runtime::install_crypto_provider();
    let t = eval_time();
    let ramp = |per_minute: f64, start: f64| -> Vec<(i64, f64)> {
        (0..=120)
            .map(|i| (t - 7200 + i * 60, start + per_minute * i as f64))
            .collect()
    };
    let text = OpenMetrics::new()
        // disk rises 10/h: /data reaches 90 from 70 in 2 h; /home is flat.
        .gauge(
            "disk_used",
            &[
                (&[("mount", "/data")], ramp(10.0 / 60.0, 50.0)),
                (&[("mount", "/home")], ramp(0.0, 40.0)),
                (&[("mount", "/var")], ramp(1.0 / 60.0, 95.0)),
            ],
        )
        .gauge("free_mem", &[(&[("node", "n1")], ramp(-0.25, 60.0))])
        .finish();
    let prometheus = PrometheusServer::start_with_openmetrics(&text);
    let config = config(
        &prometheus,
        "  - {name: disk, query: disk_used, threshold: 90}\n\
         \x20 - {name: mem, query: free_mem, threshold: 5, direction: below}\n\
         \x20 - {name: broken, query: 'sum(disk_used', threshold: 1}\n\
         \x20 - {name: absent, query: no_such_metric, threshold: 1}\n\
         \x20 - {name: infinite, query: 'disk_used / 0', threshold: 1}\n",
    );
    let client = PrometheusClient::new(config.prometheus.clone()).unwrap();
    let outcome = run_pass(
        &client,
        &config,
        &inspector_membership::Membership::fixed(Default::default()),
        "test-0",
        at(t),
    )
    .await;

    let keys: Vec<String> = outcome.findings.iter().map(|f| f.series_name()).collect();
    assert_eq!(
        keys,
        [
            "disk{mount=\"/data\"}",
            "disk{mount=\"/var\"}",
            "mem{node=\"n1\"}"
        ],
        "{outcome:#?}"
    );
    let data = &outcome.findings[0];
    let trend = data.trend().expect("a trend finding");
    let hours = trend.predicted_hours_to_breach.unwrap();
    assert!((hours - 2.0).abs() < 1e-6, "hours to breach {hours}");
    assert!((trend.slope_per_hour - 10.0).abs() < 1e-9);
    // Evidence: the fitted samples (latest 120) and the line through them.
    let evidence = trend.evidence.as_ref().expect("a trend carries its series");
    assert!(
        !evidence.points.is_empty()
            && evidence.points.len() <= inspector_domain::MAX_EVIDENCE_POINTS
    );
    assert!(evidence.points.windows(2).all(|w| w[0].at < w[1].at));
    assert!((evidence.fitted_at_detection - 70.0).abs() < 1e-6);
    for point in &evidence.points {
        let line = evidence.line_at(trend.slope_per_hour, data.detected_at, point.at);
        assert!(
            (line - point.value).abs() < 1e-6,
            "{point:?} off the line {line}"
        );
    }
    assert_eq!(data.current_value(), Some(70.0));
    assert_eq!(data.severity, inspector_domain::Severity::Warning);
    assert!(!data.labels.contains_key("__name__"));

    let var = &outcome.findings[1];
    assert_eq!(
        var.trend().unwrap().predicted_hours_to_breach,
        None,
        "already breached has no hours"
    );
    assert_eq!(var.severity, inspector_domain::Severity::Critical);

    // Free memory 30 now, falling 15/h: reaches 5 in 1.67 h.
    let mem = &outcome.findings[2];
    let mem_hours = mem.trend().unwrap().predicted_hours_to_breach.unwrap();
    assert!((mem_hours - 25.0 / 15.0).abs() < 1e-6);

    let mut errors: Vec<(String, String)> = outcome
        .errors
        .iter()
        .map(|e| (e.subject.clone(), e.message.clone()))
        .collect();
    errors.sort();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert_eq!(errors[0].0, "absent");
    assert!(errors[0].1.contains("returned no series"));
    assert_eq!(errors[1].0, "broken");
    assert!(errors[1].1.contains("bad_data"), "{}", errors[1].1);
    // Three disk series divided by zero: each is all ±Inf/NaN.
    for error in &errors[2..] {
        assert_eq!(error.0, "infinite");
        assert!(
            error.1.contains("0 finite samples") && error.1.contains("NaN/Inf"),
            "{}",
            error.1
        );
    }
    assert_eq!(outcome.series_fitted, 4);
}
