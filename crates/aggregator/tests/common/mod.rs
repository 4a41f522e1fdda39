//! Shared set-up for the aggregator's integration tests: real nats-server and
//! redis-server, a unique subject/key prefix per test.
#![allow(dead_code)]

use std::time::Duration;

use inspector_aggregator::{AggregatorConfig, AggregatorMetrics, RedisConfig, RunningAggregator};
use inspector_bus::{Bus, NatsConfig};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Finding, InspectionReport};
use inspector_test_harness::{NatsServer, RedisServer, unique_name};
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub prefix: String,
}

impl Env {
    pub fn start() -> Self {
        inspector_runtime::install_crypto_provider();
        Env {
            nats: NatsServer::start(),
            redis: RedisServer::start(),
            prefix: unique_name("t"),
        }
    }

    /// Reports only on request (`report_now`), so tests decide the windows.
    pub fn config(&self) -> AggregatorConfig {
        AggregatorConfig {
            report_interval: Duration::from_secs(3600),
            nats: NatsConfig::new(self.nats.url(), self.prefix.clone()),
            redis: RedisConfig {
                url: self.redis.url(),
                key_prefix: self.prefix.clone(),
                timeout: Duration::from_millis(300),
                ..RedisConfig::default()
            },
            ..AggregatorConfig::default()
        }
    }

    pub async fn bus(&self) -> Bus {
        Bus::connect(
            &NatsConfig::new(self.nats.url(), self.prefix.clone()),
            "test",
        )
        .await
        .unwrap()
    }

    pub async fn nats_client(&self) -> async_nats::Client {
        async_nats::connect(self.nats.url()).await.unwrap()
    }
}

pub struct Aggregator {
    pub running: RunningAggregator,
    pub shutdown: CancellationToken,
    pub bus: Bus,
}

impl Aggregator {
    pub async fn start(config: AggregatorConfig, instance: &str) -> Self {
        Self::start_with(config, instance, AggregatorMetrics::default()).await
    }

    /// Starts one counting into `metrics`.
    pub async fn start_with(
        config: AggregatorConfig,
        instance: &str,
        metrics: AggregatorMetrics,
    ) -> Self {
        let bus = Bus::connect(&config.nats, instance).await.unwrap();
        let redis = inspector_aggregator::dedup::redis_connection(&config.redis).unwrap();
        let shutdown = CancellationToken::new();
        let running = inspector_aggregator::start(
            config,
            bus.clone(),
            Some(redis),
            metrics,
            instance.to_string(),
            shutdown.clone(),
        )
        .await
        .unwrap()
        .unwrap();
        Aggregator {
            running,
            shutdown,
            bus,
        }
    }

    /// Waits until the aggregator has taken at least `count` messages.
    pub async fn wait_processed(&self, count: u64) {
        let shared = self.running.handle.shared();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while shared.processed() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aggregator processed {} of {count} messages in 20 s",
                shared.processed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages taken so far (replayed ones included).
    pub fn processed(&self) -> u64 {
        self.running.handle.shared().processed()
    }

    pub async fn report_now(&self) -> InspectionReport {
        self.running
            .handle
            .report_now()
            .await
            .expect("aggregator loop running")
    }

    /// Graceful stop: closes a last report.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.running.intake.await;
    }

    /// Crash: the loop dies without reporting (what it took is acknowledged).
    pub async fn crash(self) {
        self.running.intake.abort();
        let _ = self.running.intake.await;
        if let Some(responders) = self.running.responders {
            responders.abort();
        }
        self.shutdown.cancel();
        drop(self.bus);
    }
}

pub fn finding(key: &str, labels: &[(&str, &str)]) -> Finding {
    inspector_domain::fixtures::trend(key, labels, "test", chrono::Utc::now())
}

/// Asks for the latest report over NATS request-reply.
pub async fn request_report(client: &async_nats::Client, prefix: &str) -> Option<InspectionReport> {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(format!("{prefix}.query.report"), "".into()),
    )
    .await
    .expect("report query answered within 10 s")
    .expect("report query");
    if reply.payload.is_empty() {
        None
    } else {
        Some(InspectionReport::from_bytes(&reply.payload).expect("a valid report"))
    }
}

/// Alert transitions stored in the alerts stream so far. The aggregator
/// publishes them durably (acknowledged by JetStream) before it moves on, so
/// this needs no waiting.
pub async fn stored_alert_transitions(env: &Env) -> u64 {
    let jetstream = async_nats::jetstream::new(env.nats_client().await);
    let mut stream = jetstream
        .get_stream(env.config().nats.alert_stream_name())
        .await
        .expect("the alerts stream exists");
    stream.info().await.expect("stream info").state.messages
}
