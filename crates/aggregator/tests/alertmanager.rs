//! Alerts end to end against real servers: NATS (findings in, transitions
//! out on the alerts stream), Redis (dedup and alert state) and a real
//! Alertmanager (Debian's prometheus-alertmanager).

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Aggregator, Env, finding};
use inspector_aggregator::AggregatorConfig;
use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, AlertStatus, SensorRun};
use inspector_test_harness::AlertmanagerServer;
use serde_json::Value;

const RESEND: Duration = Duration::from_millis(500);

fn run(instance: &str, started: DateTime<Utc>) -> SensorRun {
    SensorRun {
        sensor: "trend-predictor".into(),
        instance: instance.into(),
        started_at: started,
        finished_at: started,
        findings: 0,
        errors: vec![],
        interval_seconds: 60,
        shadow: false,
        warming_up: 0,
    }
}

fn config(env: &Env, am: &AlertmanagerServer) -> AggregatorConfig {
    let mut config = env.config();
    config.alerts.resolve_after_passes = 2;
    config.alertmanager.urls = vec![am.url()];
    config.alertmanager.resend_interval = Some(RESEND);
    config.alertmanager.timeout = Duration::from_secs(2);
    config
}

/// What Alertmanager holds, as its API shows it (active, silenced and
/// inhibited; resolved alerts are not listed).
async fn alertmanager_alerts(am: &AlertmanagerServer) -> Vec<Value> {
    let url = format!("{}/api/v2/alerts", am.url());
    match reqwest::get(&url).await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Polls until `check` holds on Alertmanager's alerts; returns them.
async fn until(
    am: &AlertmanagerServer,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = alertmanager_alerts(am).await;
        if check(&alerts) {
            return alerts;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: Alertmanager holds {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has_disk_alert(alerts: &[Value]) -> bool {
    alerts.iter().any(|a| {
        a["labels"]["alertname"] == "InspectorTrendBreach" && a["labels"]["node"] == "db-1"
    })
}

#[tokio::test]
async fn an_alert_fires_in_alertmanager_survives_its_restart_and_resolves() {
    let env = Env::start();
    let mut am = AlertmanagerServer::start();
    let aggregator = Aggregator::start(config(&env, &am), "agg-1").await;
    let bus = env.bus().await;

    // The sensor sees the condition.
    let seen = finding("disk_used_percent", &[("node", "db-1"), ("mount", "/")]);
    let started = Instant::now();
    bus.publish_finding(&seen).await.unwrap();
    bus.publish_run(&run("test", seen.detected_at))
        .await
        .unwrap();
    let alerts = until(&am, "firing", has_disk_alert).await;
    let to_firing = started.elapsed();
    let alert = &alerts[0];
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["labels"]["sensor"], "trend-predictor");
    assert_eq!(alert["labels"]["key"], "disk_used_percent");
    assert_eq!(alert["labels"]["mount"], "/");
    assert_eq!(alert["annotations"]["summary"], "disk_used_percent rising");
    assert_eq!(alert["annotations"]["hours_to_breach"], "2.0000");
    assert_eq!(alert["annotations"]["slope_per_hour"], "10.0000");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .ends_with("/v1/report/latest")
    );
    let starts_at: DateTime<Utc> = alert["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        starts_at.timestamp_millis(),
        seen.detected_at.timestamp_millis()
    );

    // Seen again on the next pass: still one alert, not a second.
    let again = finding("disk_used_percent", &[("node", "db-1"), ("mount", "/")]);
    bus.publish_finding(&again).await.unwrap();
    bus.publish_run(&run("test", again.detected_at))
        .await
        .unwrap();
    aggregator.wait_processed(4).await;

    // Alertmanager restarts and forgets; the next resend brings it back.
    am.restart();
    until(&am, "resent after a restart", has_disk_alert).await;

    // The condition clears: two passes that began after the last sighting.
    let cleared = Instant::now();
    for pass in 1..=2 {
        let start = again.detected_at + chrono::Duration::seconds(pass);
        bus.publish_run(&run("test", start)).await.unwrap();
    }
    until(&am, "resolved", |alerts| !has_disk_alert(alerts)).await;
    let to_resolved = cleared.elapsed();
    println!(
        "sighting → active in Alertmanager: {to_firing:?}; cleared → resolved: {to_resolved:?}"
    );

    let report = aggregator.report_now().await;
    assert_eq!(report.alerts.len(), 1);
    let resolved = &report.alerts[0];
    assert!(
        matches!(resolved.status, AlertStatus::Resolved { .. }),
        "{resolved:?}"
    );
    assert_eq!(resolved.starts_at, seen.detected_at);
    assert_eq!(report.alerts_published, 2, "firing and resolved");
    let delivery = &report.alert_delivery[0];
    assert_eq!(delivery.target, am.url());
    assert!(delivery.attempts > 0);

    // A consumer that was not there reads both transitions from the stream.
    let client = env.nats_client().await;
    let jetstream = async_nats::jetstream::new(client);
    let stream_name = env.config().nats.alert_stream_name();
    let stream = jetstream.get_stream(&stream_name).await.unwrap();
    let consumer: async_nats::jetstream::consumer::PullConsumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(10).messages().await.unwrap();
    let mut transitions = Vec::new();
    use futures::StreamExt;
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        transitions.push((
            message.subject.to_string(),
            Alert::from_bytes(&message.payload).unwrap(),
        ));
    }
    assert_eq!(transitions.len(), 2, "{transitions:#?}");
    assert_eq!(
        transitions[0].0,
        format!("{}.alerts.firing.trend_breach", env.prefix)
    );
    assert!(transitions[0].1.is_firing());
    assert_eq!(
        transitions[1].0,
        format!("{}.alerts.resolved.trend_breach", env.prefix)
    );
    assert!(transitions[1].1.ends_at().is_some());
    aggregator.stop().await;
}

#[tokio::test]
async fn shadow_mode_sends_nothing_and_a_silence_suppresses() {
    let env = Env::start();
    let am = AlertmanagerServer::start();

    // Shadow: recorded in the report, never sent.
    let mut shadow = config(&env, &am);
    shadow.shadow = true;
    let aggregator = Aggregator::start(shadow, "agg-shadow").await;
    let bus = env.bus().await;
    bus.publish_finding(&finding("queue_depth", &[("queue", "mail")]))
        .await
        .unwrap();
    aggregator.wait_processed(1).await;
    tokio::time::sleep(RESEND * 4).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.alerts.len(), 1);
    assert!(report.alerts[0].shadow);
    assert_eq!(report.alerts_published, 0);
    assert!(
        alertmanager_alerts(&am).await.is_empty(),
        "shadow alert sent"
    );
    aggregator.stop().await;

    // A silence an operator made: the alert arrives, suppressed.
    let now = Utc::now();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "InspectorTrendBreach", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "test",
        "comment": "maintenance"
    });
    let created = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", am.url()))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{created:?}");
    let live = Aggregator::start(config(&env, &am), "agg-live").await;
    bus.publish_finding(&finding("disk_used_percent", &[("node", "db-1")]))
        .await
        .unwrap();
    let alerts = until(&am, "silenced", has_disk_alert).await;
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(
        alerts[0]["status"]["silencedBy"].as_array().unwrap().len(),
        1
    );
    live.stop().await;
}

#[tokio::test]
async fn alertmanager_down_then_up_loses_nothing_and_failures_are_reported() {
    let env = Env::start();
    let mut am = AlertmanagerServer::start();
    let aggregator = Aggregator::start(config(&env, &am), "agg-down").await;
    let bus = env.bus().await;
    am.stop();
    bus.publish_finding(&finding("disk_used_percent", &[("node", "db-1")]))
        .await
        .unwrap();
    aggregator.wait_processed(1).await;
    // Let a few pushes fail (each retries inside the 2 s timeout).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = aggregator.report_now().await;
    let delivery = &report.alert_delivery[0];
    assert!(delivery.failures > 0, "{delivery:?}");
    assert!(delivery.last_error.is_some());
    am.restart();
    until(&am, "delivered once Alertmanager is back", has_disk_alert).await;
    aggregator.stop().await;
}

#[tokio::test]
async fn a_restarted_aggregator_keeps_firing_alerts_and_resolves_them() {
    let env = Env::start();
    let am = AlertmanagerServer::start();
    let first = Aggregator::start(config(&env, &am), "agg-a").await;
    let bus = env.bus().await;
    let seen = finding("disk_used_percent", &[("node", "db-1")]);
    bus.publish_finding(&seen).await.unwrap();
    until(&am, "firing", has_disk_alert).await;
    first.report_now().await;
    first.stop().await;

    // A second aggregator restores the alert from Redis: the same condition
    // seen again is the same alert, and quiet passes resolve it.
    let second = Aggregator::start(config(&env, &am), "agg-b").await;
    let again = finding("disk_used_percent", &[("node", "db-1")]);
    bus.publish_finding(&again).await.unwrap();
    for pass in 1..=2 {
        let start = again.detected_at + chrono::Duration::seconds(pass);
        bus.publish_run(&run("test", start)).await.unwrap();
    }
    until(&am, "resolved", |alerts| !has_disk_alert(alerts)).await;
    let report = second.report_now().await;
    assert_eq!(report.alerts.len(), 1, "{:#?}", report.alerts);
    assert_eq!(report.alerts[0].starts_at, seen.detected_at, "same episode");
    assert_eq!(report.alerts_published, 1, "only the resolution is new");
    second.stop().await;
}
