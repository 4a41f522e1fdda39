//! `publish_pass` against a real nats-server: findings and the run summary
//! go out and are counted; while NATS is down the failure lands in the run's
//! errors and nothing is lost.

use std::time::{Duration, Instant};

use inspector_bus::{Bus, NatsConfig};
use inspector_domain::{Finding, SensorError};
use inspector_runtime::sensor_metrics::ErrorLabels;
use inspector_runtime::{PassContext, SensorMetrics, publish_pass};
use inspector_test_harness::{NatsServer, unique_name};
use prometheus_client::registry::Registry;

fn finding(key: &str) -> Finding {
    inspector_domain::fixtures::anomaly(key, "test", chrono::Utc::now())
}

fn context(started: Instant) -> PassContext<'static> {
    PassContext {
        sensor: "baseline-detector",
        instance: "test",
        evaluated_at: chrono::Utc::now(),
        started,
        interval: Duration::from_secs(60),
        shadow: false,
        warming_up: 0,
    }
}

fn errors_of(metrics: &SensorMetrics, kind: &str) -> u64 {
    metrics
        .errors
        .get_or_create(&ErrorLabels { kind: kind.into() })
        .get()
}

#[tokio::test]
async fn a_pass_is_published_and_a_nats_outage_lands_in_the_run() {
    let mut nats = NatsServer::start();
    let mut config = NatsConfig::new(nats.url(), unique_name("pass"));
    config.connect_timeout = Duration::from_secs(2);
    let bus = Bus::connect(&config, "test").await.unwrap();
    let metrics = SensorMetrics::register(&mut Registry::default());

    let query_error = SensorError {
        subject: "cpu_busy_ratio".into(),
        message: "query timed out".into(),
    };
    let run = publish_pass(
        &bus,
        &metrics,
        context(Instant::now()),
        &[finding("a")],
        vec![query_error.clone()],
    )
    .await;
    assert_eq!(run.findings, 1);
    assert_eq!(run.errors, vec![query_error]);
    assert_eq!(run.sensor, "baseline-detector");
    assert_eq!(run.interval_seconds, 60);
    assert!(run.finished_at >= run.started_at);
    assert_eq!(metrics.findings.get(), 1);
    assert_eq!(metrics.passes.get(), 1);
    assert_eq!(errors_of(&metrics, "query"), 1);
    assert_eq!(errors_of(&metrics, "publish"), 0);
    assert_eq!(bus.pending().await, 0);

    nats.stop();
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        publish_pass(
            &bus,
            &metrics,
            context(Instant::now()),
            &[finding("b")],
            Vec::new(),
        ),
    )
    .await
    .expect("the pass finishes while NATS is down");
    assert_eq!(run.findings, 1);
    assert_eq!(run.errors.len(), 1, "{:?}", run.errors);
    assert_eq!(run.errors[0].subject, "nats");
    assert!(
        run.errors[0].message.contains("queued for retry"),
        "{:?}",
        run.errors
    );
    assert_eq!(
        metrics.findings.get(),
        1,
        "an unsent finding is not counted"
    );
    assert_eq!(errors_of(&metrics, "publish"), 2, "finding and run summary");
    assert_eq!(bus.pending().await, 2, "both kept in the outbox");
    assert_eq!(metrics.publish_pending.get(), 2);

    nats.restart();
    let mut flushed = false;
    for _ in 0..100 {
        if bus.flush_pending().await.is_ok() {
            flushed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flushed, "outbox never flushed after NATS came back");
    assert_eq!(bus.pending().await, 0);
    assert_eq!(bus.dropped(), 0);
}

/// Issue 10, case 4: what a sensor could not publish before it stopped is
/// spooled to disk and sent by the next start, once.
#[tokio::test]
async fn unsent_findings_survive_a_restart_through_the_spool() {
    inspector_runtime::install_crypto_provider();
    let mut nats = NatsServer::start();
    let spool_dir = tempfile::tempdir().unwrap();
    let mut config = NatsConfig::new(nats.url(), unique_name("spool"));
    config.spool_path = Some(spool_dir.path().join("outbox.spool"));
    let bus = Bus::connect(&config, "sensor-1").await.unwrap();
    let metrics = SensorMetrics::register(&mut Registry::default());

    nats.stop();
    let findings = [finding("a"), finding("b"), finding("c")];
    tokio::time::timeout(
        Duration::from_secs(60),
        publish_pass(
            &bus,
            &metrics,
            context(Instant::now()),
            &findings,
            Vec::new(),
        ),
    )
    .await
    .expect("the pass finishes while NATS is down");
    // Shutdown: a short drain, then the spool.
    assert_eq!(bus.drain_outbox(Duration::from_millis(300)).await, 4);
    drop(bus);
    assert!(config.spool_path.as_ref().unwrap().exists(), "spooled");

    // The next start, with NATS back: the spool goes out first, once.
    nats.restart();
    let bus = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(bus) = Bus::connect(&config, "sensor-2").await {
                break bus;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("reconnected");
    assert_eq!(bus.pending().await, 0, "the spool was sent at connect");
    assert!(!config.spool_path.as_ref().unwrap().exists());
    let mut inbox = bus
        .inbox("aggregator", Duration::from_secs(30), 100)
        .await
        .unwrap();
    let mut ids = Vec::new();
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(2), inbox.next()).await
    {
        if let inspector_bus::Incoming::Finding(finding) = &delivery.incoming {
            ids.push(finding.id.clone());
        }
        delivery.ack().await.unwrap();
    }
    ids.sort();
    let mut expected: Vec<String> = findings.iter().map(|f| f.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every spooled finding arrived once");
}
