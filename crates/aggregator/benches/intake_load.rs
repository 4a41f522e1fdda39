//! Load test of the aggregator against real nats-server and redis-server
//! (issue 10, case 8), with the production defaults (60 s report interval,
//! `max_ack_pending` 20,000, Redis dedup):
//!
//! 1. backlog: findings already in the stream, then the aggregator starts;
//!    time until every one is taken (a restart after an outage);
//! 2. live: a publisher and the aggregator at once; findings per second
//!    taken while the publisher runs at full speed;
//! 3. `/v1/anomaly-context` with 10,000 recent findings in the window and
//!    1,000 open incidents (one per workload), concurrent keep-alive clients: requests per second and p50/p99, idle
//!    and while findings keep arriving.
//!
//! Each scenario runs twice: with every finding a new condition (each fires
//! an alert: the worst case) and with 1,000 conditions seen again and again
//! (the steady state: most are duplicates). `cargo bench -p
//! inspector-aggregator --bench intake_load`; `LOAD_FINDINGS` sets the
//! backlog size (default 100,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use inspector_aggregator::{AggregatorConfig, AggregatorMetrics, RedisConfig};
use inspector_bus::{Bus, NatsConfig};
use inspector_domain::Finding;
use inspector_domain::wire::WireMessage;
use inspector_test_harness::{NatsServer, RedisServer, unique_name};
use tokio_util::sync::CancellationToken;

/// Findings of `conditions` distinct keys (`None`: all distinct), `n` in
/// all, spread over `workloads` Deployments of one namespace.
fn findings(n: usize, conditions: Option<usize>, workloads: usize, stem: &str) -> Vec<Finding> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let key = conditions.map_or(i, |c| i % c).to_string();
            // Every sighting goes through incident grouping (one incident
            // per workload).
            let workload = format!("w{}", i % workloads);
            let mut finding = inspector_domain::fixtures::trend(
                stem,
                &[
                    ("namespace", "load"),
                    ("deployment", &workload),
                    ("pod", &key),
                ],
                "load",
                now,
            );
            // A distinct sighting each time (its own id), same condition.
            finding.detected_at = now + chrono::Duration::milliseconds(i as i64);
            finding.with_computed_id()
        })
        .collect()
}

/// Workloads of the context scenario: the 1,000 incidents.
const CONTEXT_WORKLOADS: usize = 1_000;

/// Workloads of the intake scenarios.
const INTAKE_WORKLOADS: usize = 100;

/// Publishes `findings` to the durable stream, pipelined, as sensors do.
async fn publish(jetstream: &jetstream::Context, bus: &Bus, findings: &[Finding]) {
    for chunk in findings.chunks(2_000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for finding in chunk {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", finding.id.as_str());
            let subject = bus.subjects().findings(finding.kind());
            acks.push(
                jetstream
                    .publish_with_headers(subject, headers, finding.to_bytes().into())
                    .await
                    .expect("publish"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
    }
}

struct Setup {
    nats: NatsServer,
    redis: RedisServer,
}

impl Setup {
    fn config(&self, prefix: &str) -> AggregatorConfig {
        AggregatorConfig {
            nats: NatsConfig::new(self.nats.url(), prefix),
            redis: RedisConfig {
                url: self.redis.url(),
                key_prefix: prefix.to_string(),
                ..RedisConfig::default()
            },
            ..AggregatorConfig::default()
        }
    }
}

async fn start(
    config: AggregatorConfig,
) -> (inspector_aggregator::RunningAggregator, CancellationToken) {
    let bus = Bus::connect(&config.nats, "load").await.expect("nats");
    let redis = inspector_aggregator::dedup::redis_connection(&config.redis).expect("redis");
    let shutdown = CancellationToken::new();
    let running = inspector_aggregator::start(
        config,
        bus,
        Some(redis),
        AggregatorMetrics::default(),
        "load".into(),
        shutdown.clone(),
    )
    .await
    .expect("start")
    .expect("started");
    (running, shutdown)
}

async fn wait_processed(running: &inspector_aggregator::RunningAggregator, n: u64) {
    while running.handle.shared().processed() < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn backlog(setup: &Setup, n: usize, conditions: Option<usize>) -> f64 {
    let prefix = unique_name("load");
    let config = setup.config(&prefix);
    let bus = Bus::connect(&config.nats, "publisher").await.expect("nats");
    let jetstream = jetstream::new(async_nats::connect(setup.nats.url()).await.expect("nats"));
    publish(
        &jetstream,
        &bus,
        &findings(n, conditions, INTAKE_WORKLOADS, "backlog"),
    )
    .await;
    let started = Instant::now();
    let (running, shutdown) = start(config).await;
    wait_processed(&running, n as u64).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = running.intake.await;
    rate
}

async fn live(setup: &Setup, n: usize, conditions: Option<usize>) -> f64 {
    let prefix = unique_name("live");
    let config = setup.config(&prefix);
    let bus = Bus::connect(&config.nats, "publisher").await.expect("nats");
    let jetstream = jetstream::new(async_nats::connect(setup.nats.url()).await.expect("nats"));
    let (running, shutdown) = start(config).await;
    let batch = findings(n, conditions, INTAKE_WORKLOADS, "live");
    let started = Instant::now();
    publish(&jetstream, &bus, &batch).await;
    wait_processed(&running, n as u64).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = running.intake.await;
    rate
}

/// Requests per second and p50/p99 latency of `/v1/anomaly-context` from
/// `clients` keep-alive connections for `duration`.
async fn context_load(
    port: u16,
    query: &str,
    clients: usize,
    duration: Duration,
) -> (f64, Duration, Duration) {
    let url = format!("http://127.0.0.1:{port}/v1/anomaly-context{query}");
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&url).send().await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                let _ = response.bytes().await.expect("body");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (
        latencies.len() as f64 / duration.as_secs_f64(),
        at(0.50),
        at(0.99),
    )
}

async fn context(setup: &Setup) {
    let prefix = unique_name("context");
    let config = setup.config(&prefix);
    let bus = Bus::connect(&config.nats, "publisher").await.expect("nats");
    let jetstream = jetstream::new(async_nats::connect(setup.nats.url()).await.expect("nats"));
    let (running, shutdown) = start(config).await;
    publish(
        &jetstream,
        &bus,
        &findings(10_000, None, CONTEXT_WORKLOADS, "context"),
    )
    .await;
    wait_processed(&running, 10_000).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = running.handle.api_router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let recent = running
        .handle
        .shared()
        .context(
            &Default::default(),
            inspector_aggregator::context::Format::Json,
        )
        .expect("context")
        .context
        .total_items;
    assert!(recent >= 10_000, "{recent} recent findings");
    let incidents = running.handle.shared().core().open_incidents();
    assert_eq!(
        incidents, CONTEXT_WORKLOADS,
        "one open incident per workload"
    );
    for (label, query) in [
        ("unscoped JSON", ""),
        ("scoped JSON", "?namespace=load&workload=w7"),
        (
            "scoped prompt",
            "?namespace=load&workload=w7&format=prompt&max_tokens=1500",
        ),
    ] {
        let (rate, p50, p99) = context_load(port, query, 16, Duration::from_secs(5)).await;
        println!(
            "anomaly-context {label:<14}, {recent} recent findings, {incidents} incidents, idle intake: {rate:>8.0} req/s  p50 {p50:>9.3?}  p99 {p99:>9.3?}"
        );
    }
    // Again while 1,000 findings a second keep arriving.
    let feeding = {
        let jetstream = jetstream.clone();
        let bus = bus.clone();
        tokio::spawn(async move {
            for round in 0..5 {
                let started = Instant::now();
                publish(
                    &jetstream,
                    &bus,
                    &findings(1_000, None, CONTEXT_WORKLOADS, &format!("feed{round}")),
                )
                .await;
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
            }
        })
    };
    let (rate, p50, p99) = context_load(
        port,
        "?namespace=load&workload=w7",
        16,
        Duration::from_secs(5),
    )
    .await;
    let _ = feeding.await;
    println!(
        "anomaly-context scoped JSON, 10000+ recent findings, 1,000 findings/s arriving: {rate:>8.0} req/s  p50 {p50:>9.3?}  p99 {p99:>9.3?}"
    );
    server.abort();
    shutdown.cancel();
    let _ = running.intake.await;
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: skip the load.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    inspector_runtime::install_crypto_provider();
    let n: usize = std::env::var("LOAD_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let setup = Setup {
            nats: NatsServer::start(),
            redis: RedisServer::start(),
        };
        let setup = Arc::new(setup);
        println!("aggregator intake, {n} findings, defaults (60 s reports, Redis dedup), 2 cores shared with nats-server, redis-server and the publisher");
        for (label, conditions) in [("every finding a new condition", None), ("1,000 conditions repeating", Some(1_000))] {
            let rate = backlog(&setup, n, conditions).await;
            println!("backlog, {label:<30}: {rate:>8.0} findings/s");
            let rate = live(&setup, n, conditions).await;
            println!("live,    {label:<30}: {rate:>8.0} findings/s (publisher included)");
        }
        context(&setup).await;
    });
}
