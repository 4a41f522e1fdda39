//! Dedup against a real Redis Cluster (three primaries, one replica each):
//! claims are shared through the cluster, and after a primary is killed and
//! its replica takes over, the claims it held still count.

use std::time::Duration;

use chrono::Utc;
use inspector_aggregator::RedisConfig;
use inspector_aggregator::dedup::{Deduplicator, RedisConnection, Verdict, redis_connection};
use inspector_test_harness::cluster::RedisCluster;
use inspector_test_harness::unique_name;

#[tokio::test]
async fn claims_survive_the_loss_of_a_primary() {
    let mut cluster = RedisCluster::start(3);
    let config = RedisConfig {
        url: RedisConfig::default().url,
        cluster: cluster.urls(),
        key_prefix: unique_name("dedup"),
        timeout: Duration::from_millis(500),
        ..RedisConfig::default()
    };
    let connection = redis_connection(&config).unwrap();
    assert!(matches!(connection, RedisConnection::Cluster(_)));
    let mut first = Deduplicator::new(Some(connection), &config, Duration::from_secs(1800));
    let now = Utc::now();
    let keys: Vec<String> = (0..60).map(|i| format!("trend|disk|node=n{i}")).collect();
    for key in &keys {
        assert_eq!(first.check(key, "first", now).await, Verdict::New, "{key}");
    }
    assert_eq!(first.take_status(), ("redis".to_string(), false));

    // Let the replicas catch up (asynchronous replication), then lose a
    // primary and wait for its replica to take over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let primary = cluster.primaries()[0];
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.fail_over(primary);
        cluster
    })
    .await
    .unwrap();

    // A second aggregator (fresh connection, empty memory) sees every claim,
    // with the killed node still among its seeds.
    let mut second = Deduplicator::new(
        Some(redis_connection(&config).unwrap()),
        &config,
        Duration::from_secs(1800),
    );
    for key in &keys {
        assert_eq!(
            second.check(key, "second", now).await,
            Verdict::Duplicate,
            "{key}"
        );
    }
    assert_eq!(second.take_status(), ("redis".to_string(), false));
    // And the first one, whose connection knew the old primary, recovers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let verdicts: Vec<Verdict> = futures_free(&mut first, &keys, now).await;
        let (_, degraded) = first.take_status();
        if !degraded {
            assert!(
                verdicts.iter().all(|v| *v == Verdict::Redelivery),
                "{verdicts:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "first connection never recovered"
        );
    }
    assert_eq!(second.check("new-key", "second", now).await, Verdict::New);
    drop(cluster);
}

async fn futures_free(
    dedup: &mut Deduplicator,
    keys: &[String],
    now: chrono::DateTime<Utc>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for key in keys {
        verdicts.push(dedup.check(key, "first", now).await);
    }
    verdicts
}
