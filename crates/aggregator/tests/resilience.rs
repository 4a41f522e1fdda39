//! The aggregator when things go wrong: restarts and crashes, Redis going
//! away, garbage on the bus; and shadow mode and staleness.

mod common;

use std::time::Duration;

use common::{Aggregator, Env, finding, request_report};
use inspector_aggregator::SensorSettings;
use inspector_bus::Envelope;
use inspector_domain::wire::WireMessage;
use inspector_domain::{InspectionReport, SensorRun};

fn keys(report: &InspectionReport) -> Vec<String> {
    let mut keys: Vec<String> = report.findings.iter().map(|f| f.series_name()).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn restart_loses_nothing_published_while_down() {
    let env = Env::start();
    // A message JetStream hands to the stopping aggregator's last open pull
    // request is redelivered after `ack_wait`; keep that short here.
    let mut config = env.config();
    config.ack_wait = Some(Duration::from_secs(2));
    let bus = env.bus().await;
    let first = Aggregator::start(config.clone(), "agg-a").await;
    for i in 0..3 {
        bus.publish_finding(&finding("before", &[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    first.wait_processed(3).await;
    // A graceful stop closes a last report (stored in Redis) and acks it.
    first.stop().await;

    for i in 0..4 {
        bus.publish_finding(&finding("while_down", &[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    let second = Aggregator::start(config, "agg-b").await;
    // The restarted aggregator serves the report its predecessor closed...
    let client = env.nats_client().await;
    let previous = request_report(&client, &env.prefix)
        .await
        .expect("report restored from Redis");
    assert_eq!(previous.findings.len(), 3, "{previous:#?}");
    assert_eq!(previous.aggregator_instance, "agg-a");
    // ...and receives exactly what was published while it was down.
    second.wait_processed(4).await;
    let report = second.report_now().await;
    assert_eq!(
        keys(&report),
        (0..4)
            .map(|i| format!("while_down{{i=\"{i}\"}}"))
            .collect::<Vec<_>>()
    );
    second.stop().await;
}

#[tokio::test]
async fn crash_before_report_redelivers_every_finding() {
    let env = Env::start();
    let mut config = env.config();
    // Short redelivery deadline so the test need not wait the production one.
    config.ack_wait = Some(Duration::from_secs(2));
    let bus = env.bus().await;
    let crashing = Aggregator::start(config.clone(), "agg-a").await;
    for i in 0..5 {
        bus.publish_finding(&finding("held", &[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    crashing.wait_processed(5).await;
    crashing.crash().await; // acknowledged at intake, never reported

    let survivor = Aggregator::start(config, "agg-b").await;
    // Replayed from the stream: the first start recorded where it began.
    survivor.wait_processed(5).await;
    let report = survivor.report_now().await;
    // Redis already holds their keys with their own ids: recognised as
    // redeliveries and counted, not suppressed as duplicates.
    assert_eq!(report.findings.len(), 5, "{report:#?}");
    assert_eq!(report.duplicates_suppressed, 0);
    survivor.stop().await;
}

/// Issue 10, case 8: the window is not held unacknowledged, so a window
/// larger than `max_ack_pending` flows at intake's pace (before, intake
/// stopped at `max_ack_pending` until the next report, an hour here).
#[tokio::test]
async fn intake_is_not_capped_by_max_ack_pending() {
    let env = Env::start();
    let mut config = env.config();
    config.max_ack_pending = 50;
    let bus = env.bus().await;
    let aggregator = Aggregator::start(config, "agg").await;
    let published: Vec<_> = (0..1_000)
        .map(|i| finding("flood", &[("i", &i.to_string())]))
        .collect();
    for finding in &published {
        bus.publish_finding(finding).await.unwrap();
    }
    aggregator.wait_processed(1_000).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.findings.len(), 1_000);
    assert_eq!(report.duplicates_suppressed, 0);
    aggregator.stop().await;
}

/// A crash after a report replays only what came after it: the reported
/// window is not reported twice, the unreported one is not lost.
#[tokio::test]
async fn crash_replays_only_the_unreported_window() {
    let env = Env::start();
    let config = env.config();
    let bus = env.bus().await;
    let crashing = Aggregator::start(config.clone(), "agg-a").await;
    for i in 0..3 {
        bus.publish_finding(&finding("reported", &[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    crashing.wait_processed(3).await;
    let first = crashing.report_now().await;
    assert_eq!(first.findings.len(), 3);
    for i in 0..4 {
        bus.publish_finding(&finding("unreported", &[("i", &i.to_string())]))
            .await
            .unwrap();
    }
    crashing.wait_processed(7).await;
    crashing.crash().await;

    let survivor = Aggregator::start(config, "agg-b").await;
    survivor.wait_processed(4).await;
    let report = survivor.report_now().await;
    assert_eq!(
        keys(&report),
        (0..4)
            .map(|i| format!("unreported{{i=\"{i}\"}}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        survivor.processed(),
        4,
        "replayed exactly the unreported window"
    );
    survivor.stop().await;
}

#[tokio::test]
async fn redis_going_away_falls_back_and_says_so() {
    let mut env = Env::start();
    let bus = env.bus().await;
    let aggregator = Aggregator::start(env.config(), "agg").await;
    bus.publish_finding(&finding("with_redis", &[]))
        .await
        .unwrap();
    aggregator.wait_processed(1).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.dedup_backend, "redis");
    assert!(!report.dedup_degraded);

    env.redis.stop();
    bus.publish_finding(&finding("without_redis", &[]))
        .await
        .unwrap();
    // Same key again: the in-process fallback still suppresses it.
    bus.publish_finding(&finding("without_redis", &[("x", "1")]))
        .await
        .unwrap();
    let mut again = finding("without_redis", &[]);
    again.detected_at += chrono::Duration::seconds(1);
    bus.publish_finding(&again.with_computed_id())
        .await
        .unwrap();
    // And the key claimed in Redis before it went away is known locally.
    let mut earlier = finding("with_redis", &[]);
    earlier.detected_at += chrono::Duration::seconds(1);
    bus.publish_finding(&earlier.with_computed_id())
        .await
        .unwrap();
    aggregator.wait_processed(5).await;

    let report = aggregator.report_now().await;
    assert!(report.dedup_degraded, "{report:#?}");
    assert!(
        report
            .dedup_backend
            .starts_with("in-process fallback (redis"),
        "{}",
        report.dedup_backend
    );
    assert_eq!(keys(&report), ["without_redis", "without_redis{x=\"1\"}"]);
    assert_eq!(report.duplicates_suppressed, 2);
    aggregator.stop().await;
}

#[tokio::test]
async fn garbage_is_counted_and_skipped() {
    let env = Env::start();
    let bus = env.bus().await;
    let aggregator = Aggregator::start(env.config(), "agg").await;
    for (subject, payload) in [
        (
            format!("{}.findings.trend", env.prefix),
            b"\xde\xad\xbe\xef garbage".to_vec(),
        ),
        (format!("{}.findings.logs", env.prefix), Vec::new()),
        (
            format!("{}.runs.trend-predictor", env.prefix),
            b"{\"json\": true}".to_vec(),
        ),
    ] {
        bus.publish_durable(Envelope {
            subject,
            payload: payload.into(),
            msg_id: None,
        })
        .await
        .unwrap();
    }
    bus.publish_finding(&finding("valid", &[])).await.unwrap();
    aggregator.wait_processed(4).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.malformed_messages, 3);
    assert_eq!(keys(&report), ["valid"]);
    aggregator.stop().await;
}

#[tokio::test]
async fn shadow_mode_records_but_raises_no_alert() {
    let env = Env::start();
    let bus = env.bus().await;

    // Global shadow.
    let mut config = env.config();
    config.shadow = true;
    let aggregator = Aggregator::start(config, "agg").await;
    bus.publish_finding(&finding("global_shadow", &[]))
        .await
        .unwrap();
    aggregator.wait_processed(1).await;
    let report = aggregator.report_now().await;
    assert!(report.shadow);
    assert_eq!(keys(&report), ["global_shadow"]);
    assert_eq!(report.alerts_published, 0);
    aggregator.stop().await;

    // Per sensor (aggregator config) and per finding (sensor ran in shadow).
    let mut config = env.config();
    config.sensors.insert(
        "baseline-detector".into(),
        SensorSettings {
            shadow: true,
            ..SensorSettings::default()
        },
    );
    let aggregator = Aggregator::start(config, "agg").await;
    let from_shadow_sensor =
        inspector_domain::fixtures::anomaly("sensor_shadow", "test", chrono::Utc::now());
    bus.publish_finding(&from_shadow_sensor).await.unwrap();
    let mut shadow_flagged = finding("finding_shadow", &[]);
    shadow_flagged.shadow = true;
    bus.publish_finding(&shadow_flagged.with_computed_id())
        .await
        .unwrap();
    bus.publish_finding(&finding("live", &[])).await.unwrap();
    aggregator.wait_processed(3).await;
    let report = aggregator.report_now().await;
    assert!(!report.shadow);
    assert_eq!(keys(&report), ["finding_shadow", "live", "sensor_shadow"]);
    assert_eq!(report.alerts_published, 1);
    assert_eq!(
        common::stored_alert_transitions(&env).await,
        1,
        "only the live finding alerts"
    );
    aggregator.stop().await;
}

#[tokio::test]
async fn switched_off_sensors_and_run_errors_are_reported() {
    let env = Env::start();
    let mut config = env.config();
    config.sensors.clear();
    config.sensors.insert(
        "trend-predictor".into(),
        SensorSettings {
            interval: Duration::from_secs(1),
            ..SensorSettings::default()
        },
    );
    config.sensors.insert(
        "log-pattern".into(),
        SensorSettings {
            enabled: false,
            ..SensorSettings::default()
        },
    );
    let bus = env.bus().await;
    let aggregator = Aggregator::start(config, "agg").await;
    let now = chrono::Utc::now();
    bus.publish_run(&SensorRun {
        sensor: "baseline-detector".into(),
        instance: "b-0".into(),
        started_at: now,
        finished_at: now,
        findings: 0,
        errors: vec![inspector_domain::SensorError {
            subject: "cpu".into(),
            message: "Prometheus did not answer within 30s".into(),
        }],
        interval_seconds: 3600,
        shadow: false,
        warming_up: 0,
    })
    .await
    .unwrap();
    aggregator.wait_processed(1).await;
    let report = aggregator.report_now().await;
    let status = |name: &str| {
        report
            .sensors
            .iter()
            .find(|s| s.sensor == name)
            .unwrap()
            .clone()
    };
    // Staleness over time is the core's, tested on an injected clock.
    assert!(!status("log-pattern").stale, "switched off: never stale");
    assert!(!status("log-pattern").enabled);
    let baseline = status("baseline-detector");
    assert!(!baseline.stale);
    assert_eq!(baseline.errors.len(), 1);
    assert_eq!(baseline.errors[0].subject, "b-0: cpu");

    // Errors belong to the window they arrived in.
    let next = aggregator.report_now().await;
    assert!(next.sensors.iter().all(|s| s.errors.is_empty()));
    aggregator.stop().await;
}

/// Issue 10, case 1: a run summary claiming an absurd interval used to panic
/// the intake (and, never acknowledged, every restarted aggregator after
/// it). Now it is rejected at the edge, terminated, counted, and the intake
/// goes on.
#[tokio::test]
async fn a_poison_run_summary_is_rejected_not_fatal() {
    let env = Env::start();
    let bus = env.bus().await;
    let aggregator = Aggregator::start(env.config(), "agg").await;
    let now = chrono::Utc::now();
    bus.publish_run(&SensorRun {
        sensor: "trend-predictor".into(),
        instance: "evil".into(),
        started_at: now,
        finished_at: now,
        findings: 0,
        errors: vec![],
        interval_seconds: 10_000_000_000_000_000,
        shadow: false,
        warming_up: 0,
    })
    .await
    .unwrap();
    bus.publish_finding(&finding("after_the_poison", &[]))
        .await
        .unwrap();
    aggregator.wait_processed(2).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.malformed_messages, 1);
    assert_eq!(keys(&report), ["after_the_poison"]);
    // Terminated and acknowledged: nothing left for a restart to choke on.
    let state = bus.consumer_state("aggregator").await.unwrap();
    assert_eq!((state.pending, state.ack_pending), (0, 0), "{state:?}");
    aggregator.stop().await;
    let again = Aggregator::start(env.config(), "agg-2").await;
    tokio::time::timeout(Duration::from_secs(2), again.report_now())
        .await
        .expect("a restarted aggregator is alive");
    again.stop().await;
}

/// Issue 10, case 5: Redis restarting empty inside the dedup window must not
/// report the same condition again.
#[tokio::test]
async fn redis_losing_its_keys_does_not_re_report() {
    let env = Env::start();
    let bus = env.bus().await;
    let aggregator = Aggregator::start(env.config(), "agg").await;
    bus.publish_finding(&finding("disk", &[("node", "n1")]))
        .await
        .unwrap();
    aggregator.wait_processed(1).await;
    assert_eq!(aggregator.report_now().await.findings.len(), 1);

    // Everything Redis knew is gone (a restart without persistence).
    let client = redis::Client::open(env.redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut connection)
        .await
        .unwrap();

    let mut again = finding("disk", &[("node", "n1")]);
    again.detected_at += chrono::Duration::seconds(60);
    bus.publish_finding(&again.with_computed_id())
        .await
        .unwrap();
    aggregator.wait_processed(2).await;
    let report = aggregator.report_now().await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.duplicates_suppressed, 1);
    assert!(!report.dedup_degraded, "Redis answered all along");
    aggregator.stop().await;
}

/// Issue 10, case 5: a Redis that accepts connections and never answers
/// costs one timeout per cool-down, not one per finding.
#[tokio::test]
async fn a_hung_redis_does_not_throttle_intake() {
    let env = Env::start();
    // Accepts, reads, never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("redis://{}", hung.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hung.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut config = env.config();
    config.redis.url = hung_url;
    let bus = env.bus().await;
    let aggregator = Aggregator::start(config, "agg").await;
    let started = std::time::Instant::now();
    for i in 0..300 {
        bus.publish_finding(&finding(&format!("k{i}"), &[]))
            .await
            .unwrap();
    }
    aggregator.wait_processed(300).await;
    let took = started.elapsed();
    // Each Redis attempt times out after 0.9 s; one per 5 s cool-down.
    assert!(took < Duration::from_secs(6), "300 findings took {took:?}");
    let report = aggregator.report_now().await;
    assert_eq!(report.findings.len(), 300);
    assert!(report.dedup_degraded);
    aggregator.stop().await;
}

/// Issue 10, case 6: a window with many big findings still gives a report
/// that is published and answered over NATS (it fits the server's max
/// payload), listing the most important findings and counting the rest.
#[tokio::test]
async fn big_windows_give_reports_that_fit() {
    let env = Env::start();
    let bus = env.bus().await;
    let mut config = env.config();
    config.report_max_findings = 600;
    let aggregator = Aggregator::start(config, "agg").await;
    let client = env.nats_client().await;
    let wordy = "x".repeat(3_000);
    for i in 0..800 {
        let mut f = finding(&format!("series_{i}"), &[]);
        f.description = format!("{wordy} {i}");
        bus.publish_finding(&f.with_computed_id()).await.unwrap();
    }
    aggregator.wait_processed(800).await;
    let report = aggregator.report_now().await;
    let max = bus.max_payload().unwrap();
    assert!(report.encoded_len() < max, "{} bytes", report.encoded_len());
    assert_eq!(
        report.findings.len() as u32 + report.findings_omitted,
        800,
        "listed + omitted = all"
    );
    assert!(
        report.findings_omitted >= 200,
        "{}",
        report.findings_omitted
    );
    assert_eq!(
        report.counts[&inspector_domain::FindingKind::TrendBreach],
        800
    );
    let answered = request_report(&client, &env.prefix)
        .await
        .expect("answered");
    assert_eq!(answered.findings_omitted, report.findings_omitted);
    aggregator.stop().await;
}

/// Issue 27: the aggregator and Redis lost together (Redis restarted
/// without persistence while the aggregator was down). The restarted
/// aggregator restores the claims and the firing alerts from the alerts
/// stream: the same conditions inside the dedup window are suppressed and
/// begin no new alert episode.
#[tokio::test]
async fn losing_redis_and_the_aggregator_together_does_not_re_report() {
    let env = Env::start();
    let bus = env.bus().await;
    let first = Aggregator::start(env.config(), "agg-a").await;
    let conditions = |round: i64| -> Vec<_> {
        (0..50)
            .map(|i| {
                let mut f = finding("disk", &[("node", &format!("n{i}"))]);
                f.detected_at += chrono::Duration::seconds(60 * round);
                f.with_computed_id()
            })
            .collect()
    };
    for f in conditions(0) {
        bus.publish_finding(&f).await.unwrap();
    }
    first.wait_processed(50).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while common::stored_alert_transitions(&env).await < 50 {
        assert!(tokio::time::Instant::now() < deadline, "alerts not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.crash().await;

    let client = redis::Client::open(env.redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut connection)
        .await
        .unwrap();

    let second = Aggregator::start(env.config(), "agg-b").await;
    for f in conditions(1) {
        bus.publish_finding(&f).await.unwrap();
    }
    second.wait_processed(50).await;
    let report = second.report_now().await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.duplicates_suppressed, 50);
    assert!(
        report.dedup_backend.contains("50 dedup claims restored"),
        "{}",
        report.dedup_backend
    );
    assert_eq!(report.alerts.iter().filter(|a| a.is_firing()).count(), 50);
    // No new episode: nothing more on the alerts stream.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(common::stored_alert_transitions(&env).await, 50);
    second.stop().await;
}
