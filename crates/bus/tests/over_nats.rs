//! The bus against a real nats-server with JetStream.

use std::collections::BTreeMap;
use std::time::Duration;

use inspector_bus::{Bus, NatsConfig};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Finding, FindingKind, Severity};
use inspector_test_harness::{NatsServer, unique_name};

fn finding(key: &str) -> Finding {
    Finding {
        id: String::new(),
        kind: FindingKind::TrendBreach,
        key: key.into(),
        labels: BTreeMap::new(),
        severity: Severity::Warning,
        description: "test".into(),
        current_value: Some(1.0),
        threshold: Some(2.0),
        expected_mean: None,
        expected_std: None,
        deviation_sigma: None,
        template: None,
        example: None,
        slope_per_hour: Some(1.0),
        r_squared: Some(0.9),
        confidence: None,
        predicted_hours_to_breach: Some(1.0),
        source: key.into(),
        detected_at: chrono::Utc::now(),
        shadow: false,
        sensor: "trend-predictor".into(),
        instance: "test".into(),
    }
    .with_computed_id()
}

async fn next_finding(inbox: &mut inspector_bus::Inbox) -> Finding {
    let delivery = tokio::time::timeout(Duration::from_secs(10), inbox.next())
        .await
        .expect("a message within 10 s")
        .expect("inbox open")
        .expect("no consumer error");
    let finding = Finding::from_bytes(&delivery.payload).unwrap();
    delivery.ack().await.unwrap();
    finding
}

#[tokio::test]
async fn republished_finding_is_stored_once() {
    let nats = NatsServer::start();
    let config = NatsConfig::new(nats.url(), unique_name("bus"));
    let bus = Bus::connect(&config, "test").await.unwrap();
    let first = finding("a");
    bus.publish_finding(&first).await.unwrap();
    bus.publish_finding(&first).await.unwrap(); // a retry: same id
    let second = finding("b");
    bus.publish_finding(&second).await.unwrap();

    let mut inbox = bus
        .inbox("agg", Duration::from_secs(30), 1000)
        .await
        .unwrap();
    assert_eq!(next_finding(&mut inbox).await.key, "a");
    assert_eq!(next_finding(&mut inbox).await.key, "b");
    let nothing = tokio::time::timeout(Duration::from_millis(500), inbox.next()).await;
    assert!(nothing.is_err(), "the duplicate was delivered");
}

#[tokio::test]
async fn publishes_while_nats_is_down_are_kept_and_sent_later() {
    let mut nats = NatsServer::start();
    let mut config = NatsConfig::new(nats.url(), unique_name("bus"));
    config.connect_timeout = Duration::from_secs(2);
    let bus = Bus::connect(&config, "test").await.unwrap();
    let mut inbox = bus
        .inbox("agg", Duration::from_secs(30), 1000)
        .await
        .unwrap();

    nats.stop();
    let during_outage = finding("during-outage");
    let result =
        tokio::time::timeout(Duration::from_secs(30), bus.publish_finding(&during_outage)).await;
    assert!(
        matches!(result, Ok(Err(_))),
        "publish must fail while NATS is down: {result:?}"
    );
    assert_eq!(bus.pending().await, 1);

    nats.restart();
    // The client reconnects by itself; flushing then sends the queued finding.
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
    assert_eq!(next_finding(&mut inbox).await.key, "during-outage");
}

#[tokio::test]
async fn in_process_bus_carries_the_same_bytes() {
    let bus = Bus::in_process("demo");
    let mut inbox = bus
        .inbox("agg", Duration::from_secs(1), 1000)
        .await
        .unwrap();
    let sent = finding("local");
    bus.publish_finding(&sent).await.unwrap();
    let delivery = inbox.next().await.unwrap().unwrap();
    assert_eq!(delivery.subject, "demo.findings.trend");
    assert_eq!(Finding::from_bytes(&delivery.payload).unwrap(), sent);
    assert!(
        bus.inbox("again", Duration::from_secs(1), 1000)
            .await
            .is_err()
    );
}
