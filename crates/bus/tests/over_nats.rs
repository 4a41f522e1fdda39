//! The bus against a real nats-server with JetStream.

use std::time::Duration;

use inspector_bus::{Bus, NatsConfig};
use inspector_domain::Finding;
use inspector_test_harness::{NatsServer, unique_name};

fn finding(key: &str) -> Finding {
    inspector_domain::fixtures::trend(key, &[], "test", chrono::Utc::now())
}

async fn next_finding(inbox: &mut inspector_bus::Inbox) -> Finding {
    let delivery = tokio::time::timeout(Duration::from_secs(10), inbox.next())
        .await
        .expect("a message within 10 s")
        .expect("inbox open")
        .expect("no consumer error");
    let inspector_bus::Incoming::Finding(finding) = delivery.incoming.clone() else {
        panic!("not a finding: {:?}", delivery.incoming);
    };
    let finding = *finding;
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
    assert_eq!(
        delivery.incoming,
        inspector_bus::Incoming::Finding(Box::new(sent.clone()))
    );
    assert!(
        bus.inbox("again", Duration::from_secs(1), 1000)
            .await
            .is_err()
    );
}

/// A three-server JetStream cluster with the stream kept three times: losing
/// the server the publisher is connected to loses nothing, and the consumer
/// reads every finding once.
#[tokio::test]
async fn a_replicated_stream_survives_the_loss_of_one_server() {
    let mut cluster = inspector_test_harness::cluster::NatsCluster::start(3);
    let mut config = NatsConfig::new(cluster.urls(), unique_name("bus"));
    config.stream_replicas = 3;
    // The cluster elects its JetStream meta leader after the servers are up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let bus = loop {
        match Bus::connect(&config, "cluster-test").await {
            Ok(bus) => break bus,
            Err(error) => {
                assert!(tokio::time::Instant::now() < deadline, "no stream: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let before: Vec<Finding> = (0..20).map(|i| finding(&format!("before-{i}"))).collect();
    for f in &before {
        bus.publish_finding(f).await.unwrap();
    }
    cluster.kill(0);
    let after: Vec<Finding> = (0..20).map(|i| finding(&format!("after-{i}"))).collect();
    for f in &after {
        // The client moves to another server; the stream elects a new leader.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Err(error) = bus.publish_finding(f).await {
            assert!(tokio::time::Instant::now() < deadline, "{error}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    bus.drain_outbox(Duration::from_secs(30)).await;
    // The consumer is created as the aggregator does: retried while the
    // cluster elects new leaders for what the lost server led.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut inbox = loop {
        match bus.inbox("aggregator", Duration::from_secs(30), 1000).await {
            Ok(inbox) => break inbox,
            Err(error) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no consumer: {}",
                    error
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let f = next_finding(&mut inbox).await;
        assert!(seen.insert(f.id.clone()), "{} delivered twice", f.key);
    }
    let expected: std::collections::BTreeSet<String> =
        before.iter().chain(&after).map(|f| f.id.clone()).collect();
    assert_eq!(seen, expected);
    // Nothing more: no duplicates from the retries.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), inbox.next())
            .await
            .is_err(),
        "an extra message arrived"
    );
}
