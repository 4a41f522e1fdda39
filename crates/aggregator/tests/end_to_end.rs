//! Trend predictor → JetStream → aggregator → report over NATS and HTTP,
//! against real Prometheus, nats-server and redis-server.

mod common;

use chrono::{DateTime, Utc};
use common::{Aggregator, Env, request_report};
use inspector_domain::FindingKind;
use inspector_prometheus::PrometheusClient;
use inspector_runtime::SensorMetrics;
use inspector_test_harness::{OpenMetrics, PrometheusServer};
use inspector_trend_predictor::{TrendPredictor, TrendPredictorConfig};

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

#[tokio::test]
async fn rising_metric_is_reported_once_and_served() {
    let env = Env::start();
    // Two hours of history ending at t: a rise of 10/h (70 now, threshold 90
    // → 2 h to breach) and a flat series that must not be reported.
    let t = Utc::now().timestamp() / 60 * 60 - 300;
    let series = |per_minute: f64, start: f64| -> Vec<(i64, f64)> {
        (0..=120)
            .map(|i| (t - 7200 + i * 60, start + per_minute * i as f64))
            .collect()
    };
    let text = OpenMetrics::new()
        .gauge(
            "disk_used",
            &[(&[("mount", "/data")], series(10.0 / 60.0, 50.0))],
        )
        .gauge("queue_depth", &[(&[("queue", "jobs")], series(0.0, 12.0))])
        .finish();
    let prometheus = PrometheusServer::start_with_openmetrics(&text);

    let aggregator = Aggregator::start(env.config(), "agg-0").await;
    let client = env.nats_client().await;

    let yaml = format!(
        "prometheus: {{url: '{}'}}\nnats: {{url: '{}', subject_prefix: '{}'}}\nmetrics:\n\
         \x20 - {{name: disk_used, query: disk_used, threshold: 90}}\n\
         \x20 - {{name: queue_depth, query: queue_depth, threshold: 100}}\n",
        prometheus.url(),
        env.nats.url(),
        env.prefix
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let config: TrendPredictorConfig =
        inspector_runtime::load_config(Some(file.path()), []).unwrap();
    config.validate().unwrap();
    let source = PrometheusClient::new(config.prometheus.clone()).unwrap();
    let predictor = TrendPredictor::new(
        config,
        source,
        env.bus().await,
        SensorMetrics::register(&mut Default::default()),
        inspector_membership::Membership::fixed(Default::default()),
        "trend-0".into(),
    );

    // Pass one: one finding and one run summary.
    let outcome = predictor.run_once(at(t)).await;
    assert_eq!(outcome.findings.len(), 1, "{outcome:#?}");
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    aggregator.wait_processed(2).await;
    aggregator.report_now().await;

    let report = request_report(&client, &env.prefix)
        .await
        .expect("a report");
    assert_eq!(report.findings.len(), 1, "{report:#?}");
    let finding = &report.findings[0];
    assert_eq!(finding.kind(), FindingKind::TrendBreach);
    assert_eq!(finding.key, "disk_used");
    assert_eq!(finding.labels["mount"], "/data");
    let hours = finding.trend().unwrap().predicted_hours_to_breach.unwrap();
    assert!((hours - 2.0).abs() < 1e-6, "hours to breach {hours}");
    assert_eq!(report.counts[&FindingKind::TrendBreach], 1);
    assert_eq!(report.counts[&FindingKind::LogPattern], 0);
    assert_eq!(report.duplicates_suppressed, 0);
    assert_eq!(report.dedup_backend, "redis");
    assert!(!report.dedup_degraded);
    assert_eq!(report.alerts_published, 1);
    let trend = report
        .sensors
        .iter()
        .find(|s| s.sensor == "trend-predictor")
        .unwrap();
    assert!(!trend.stale);
    assert_eq!(trend.instances, ["trend-0"]);
    assert!(trend.errors.is_empty());

    // Pass two a minute later, inside the dedup window: same key, new id.
    let outcome = predictor.run_once(at(t + 60)).await;
    assert_eq!(outcome.findings.len(), 1);
    aggregator.wait_processed(4).await;
    aggregator.report_now().await;
    let report = request_report(&client, &env.prefix)
        .await
        .expect("a report");
    assert!(report.findings.is_empty(), "{report:#?}");
    assert_eq!(report.duplicates_suppressed, 1);
    assert_eq!(report.alerts_published, 0);

    // Exactly one alert over both passes.
    assert_eq!(common::stored_alert_transitions(&env).await, 1);

    // The same over HTTP.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(inspector_runtime::serve_http(
        listener,
        aggregator.running.handle.api_router(),
        stop.clone(),
    ));
    let http = reqwest::Client::new();
    let latest: serde_json::Value = http
        .get(format!("{base}/v1/report/latest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["duplicates_suppressed"], 1);
    assert_eq!(latest["counts"]["trend_breach"], 0);
    let context: serde_json::Value = http
        .get(format!("{base}/v1/anomaly-context"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(context["version"], 2);
    let items = context["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{context:#}");
    assert_eq!(items[0]["scope_match"], "cluster");
    let finding = &items[0]["finding"];
    assert_eq!(finding["kind"], "trend_breach");
    assert_eq!(finding["predicted_hours_to_breach"], 2.0);
    assert_eq!(finding["labels"]["mount"], "/data");

    // And the anomaly context over NATS request-reply.
    let reply = client
        .request(format!("{}.query.anomaly-context", env.prefix), "".into())
        .await
        .unwrap();
    let over_nats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(over_nats["items"], context["items"]);
    stop.cancel();
    aggregator.stop().await;
}
