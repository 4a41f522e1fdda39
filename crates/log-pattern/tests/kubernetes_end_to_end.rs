//! Pod logs through the unchanged `kube` client (against a stand-in API
//! server) → log-pattern → real nats-server → aggregator (real Redis) →
//! report; plus a cut stream, a new pod, and a restart from the snapshot.

mod standin;

use std::time::Duration;

use inspector_aggregator::{AggregatorConfig, AggregatorMetrics, RedisConfig};
use inspector_bus::{Bus, NatsConfig};
use inspector_domain::{FindingKind, InspectionReport};
use inspector_log_pattern::{LogPatternConfig, LogPatternSensor, start_source};
use inspector_runtime::SensorMetrics;
use inspector_test_harness::{NatsServer, RedisServer, unique_name};
use standin::KubeStandin;
use tokio_util::sync::CancellationToken;

fn sensor_config(api: &str, nats: &NatsConfig, snapshot: &std::path::Path) -> LogPatternConfig {
    let yaml = format!(
        "warmup_lines: 5\ninterval: 1h\nsnapshot: {{path: '{}'}}\n\
         nats: {{url: '{}', subject_prefix: '{}'}}\n\
         source: {{kind: kubernetes, api_url: '{api}', namespaces: [shop], label_selector: 'tier=backend', discovery_interval: 100ms, max_backoff: 500ms}}\n",
        snapshot.display(),
        nats.url,
        nats.subject_prefix
    );
    let config: LogPatternConfig = inspector_runtime::load_config_from_str(&yaml).unwrap();
    config.validate().unwrap();
    config
}

struct RunningSensor {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

async fn start_sensor(config: LogPatternConfig) -> RunningSensor {
    let bus = Bus::connect(&config.nats, "log-pattern-test")
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let events = start_source(&config, shutdown.clone()).await.unwrap();
    let sensor = LogPatternSensor::new(
        config,
        bus,
        SensorMetrics::register(&mut Default::default()),
        "log-pattern-0".into(),
    );
    let task = tokio::spawn(sensor.run(events, shutdown.clone(), false));
    RunningSensor { shutdown, task }
}

impl RunningSensor {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// Closes reports until the log_pattern findings seen reach `count` (or 20 s).
async fn collect_findings(
    handle: &inspector_aggregator::AggregatorHandle,
    count: usize,
) -> Vec<inspector_domain::Finding> {
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while found.len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let report: InspectionReport = handle.report_now().await.unwrap();
        found.extend(
            report
                .findings
                .into_iter()
                .filter(|f| f.kind() == FindingKind::LogPattern),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_templates_from_pod_logs_reach_the_report() {
    inspector_runtime::install_crypto_provider();
    let nats = NatsServer::start();
    let redis = RedisServer::start();
    let prefix = unique_name("logs");
    let nats_config = NatsConfig::new(nats.url(), prefix.clone());
    let snapshot_dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_dir.path().join("log-pattern.snapshot");

    let kube = KubeStandin::default();
    let api = kube.start().await;
    kube.add_pod(
        "shop",
        "checkout-7f9c-x1",
        &[("app", "checkout"), ("tier", "backend")],
        &["app"],
    );
    kube.add_pod(
        "shop",
        "frontend-1",
        &[("app", "frontend"), ("tier", "web")],
        &["app"],
    );
    // History the sensor reads as warm-up (tail): ordinary variation only.
    for i in 0..5 {
        kube.log(
            "checkout-7f9c-x1",
            "app",
            &format!("GET /cart/{i} 200 in {}ms", 10 + i),
        );
    }

    let aggregator_config = AggregatorConfig {
        report_interval: Duration::from_secs(3600),
        nats: nats_config.clone(),
        redis: RedisConfig {
            url: redis.url(),
            key_prefix: prefix.clone(),
            timeout: Duration::from_millis(300),
            ..RedisConfig::default()
        },
        ..AggregatorConfig::default()
    };
    let aggregator_bus = Bus::connect(&nats_config, "aggregator").await.unwrap();
    let stop_aggregator = CancellationToken::new();
    let aggregator = inspector_aggregator::start(
        aggregator_config.clone(),
        aggregator_bus,
        Some(inspector_aggregator::dedup::redis_connection(&aggregator_config.redis).unwrap()),
        AggregatorMetrics::default(),
        "agg".into(),
        stop_aggregator.clone(),
    )
    .await
    .unwrap()
    .unwrap();

    let sensor = start_sensor(sensor_config(&api, &nats_config, &snapshot)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Known shape with new values: nothing. A new shape: one finding.
    kube.log("checkout-7f9c-x1", "app", "GET /cart/99 200 in 31ms");
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "payment provider refused connection from 10.1.2.3:443",
    );
    let findings = collect_findings(&aggregator.handle, 1).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let finding = &findings[0];
    assert_eq!(
        finding.log().map(|l| l.template.as_str()),
        Some("payment provider refused connection from <IP>")
    );
    assert_eq!(finding.labels["workload"], "checkout");
    assert_eq!(finding.labels["namespace"], "shop");
    assert_eq!(finding.source, "shop/checkout-7f9c-x1/app");
    assert_eq!(finding.severity, inspector_domain::Severity::Warning);
    assert!(finding.log().unwrap().example.contains("10.1.2.3"));
    // The web tier is not selected.
    assert!(kube.log_requests().iter().all(|q| !q.contains("frontend")));

    // The stream breaks; lines written meanwhile arrive once after resume.
    kube.cut("checkout-7f9c-x1", "app");
    tokio::time::sleep(Duration::from_millis(100)).await;
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "inventory service timed out after 5s",
    );
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "payment provider refused connection from 10.9.9.9:443",
    );
    let findings = collect_findings(&aggregator.handle, 1).await;
    let templates: Vec<_> = findings
        .iter()
        .filter_map(|f| f.log().map(|l| l.template.clone()))
        .collect();
    assert_eq!(templates, ["inventory service timed out after <NUM>"]);
    let requests = kube.log_requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        requests[0].contains("tailLines=100") && requests[0].contains("follow=true"),
        "{requests:?}"
    );
    assert!(requests[0].contains("timestamps=true"), "{requests:?}");
    assert!(
        requests.last().unwrap().contains("sinceSeconds="),
        "resume asks from the last line: {requests:?}"
    );

    // A new pod of another workload is picked up; its warm-up reports nothing.
    kube.add_pod(
        "shop",
        "billing-0",
        &[("app", "billing"), ("tier", "backend")],
        &["app"],
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    for i in 0..5 {
        kube.log(
            "billing-0",
            "app",
            &format!("invoice {i} sent to customer {}", 100 + i),
        );
    }
    kube.log(
        "billing-0",
        "app",
        "ledger mismatch detected for account 42",
    );
    let findings = collect_findings(&aggregator.handle, 1).await;
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].labels["workload"], "billing");

    // Restart: the snapshot keeps what was learnt; nothing known is new again.
    sensor.stop().await;
    assert!(snapshot.is_file());
    let mut miner = inspector_log_pattern::Miner::new(
        inspector_drain::DrainConfig::recommended(),
        inspector_drain::Masker::builtin(),
        5,
        16_384,
    );
    miner.restore(&std::fs::read(&snapshot).unwrap()).unwrap();
    let stats = miner.stats();
    // 5 history + 2 + 2 (after the cut, each once) for checkout; 6 for billing.
    assert_eq!(stats["checkout"].0, 9, "{stats:?}");
    assert_eq!(stats["billing"].0, 6, "{stats:?}");

    let restarted = start_sensor(sensor_config(&api, &nats_config, &snapshot)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "payment provider refused connection from 10.7.7.7:443",
    );
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "inventory service timed out after 9s",
    );
    kube.log(
        "checkout-7f9c-x1",
        "app",
        "refund issued for order 77 by operator alice",
    );
    let findings = collect_findings(&aggregator.handle, 1).await;
    let templates: Vec<_> = findings
        .iter()
        .filter_map(|f| f.log().map(|l| l.template.clone()))
        .collect();
    assert_eq!(
        templates,
        ["refund issued for order <NUM> by operator alice"]
    );
    restarted.stop().await;
    stop_aggregator.cancel();
}
