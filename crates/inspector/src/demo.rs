//! `inspector demo`: the trend predictor, the baseline detector, the
//! log-pattern sensor and the aggregator in one process on the in-process
//! bus, over the bundled scenario. Same code paths as the
//! services; only the transport (channels, not NATS), the data source (the
//! scenario, not Prometheus) and dedup (in-process, not Redis) differ.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use inspector_aggregator::{AggregatorConfig, AggregatorMetrics};
use inspector_baseline_detector::{BaselineDetectorConfig, Detector};
use inspector_bus::Bus;
use inspector_domain::InspectionReport;
use inspector_log_pattern::{LineOrigin, LogPatternConfig, LogPatternSensor, SourceEvent};
use inspector_runtime::{OpsState, SensorMetrics, ops_router, serve_http};
use inspector_trend_predictor::{TrendPredictor, TrendPredictorConfig};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::render::render_report;
use crate::scenario::Scenario;

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to serve the HTTP API while running.
    pub listen: SocketAddr,
    /// Print the first report and stop instead of serving until Ctrl-C.
    pub once: bool,
    /// Time between sensor passes and reports while serving.
    pub interval: Duration,
}

/// Feeds the bundled checkout log through the log-pattern sensor (the same
/// code as the service, lines from memory instead of pod logs).
async fn replay_logs(bus: &Bus) -> anyhow::Result<(u64, u64)> {
    let config: LogPatternConfig =
        inspector_runtime::load_config_from_str(crate::scenario::LOG_CONFIG)
            .context("demo log-pattern config")?;
    config.validate().map_err(anyhow::Error::msg)?;
    let (sender, events) = tokio::sync::mpsc::channel(1024);
    for text in crate::scenario::checkout_log_lines() {
        let origin = LineOrigin {
            workload: "checkout".into(),
            namespace: "shop".into(),
            pod: "checkout-7f9c-x1".into(),
            container: "app".into(),
        };
        sender.send(SourceEvent::Line { origin, text }).await?;
    }
    drop(sender);
    let sensor = LogPatternSensor::new(
        config,
        bus.clone(),
        SensorMetrics::register(&mut Registry::default()),
        "demo".into(),
    );
    Ok(sensor.run(events, CancellationToken::new(), true).await)
}

/// Learns the scenario's daily request rates with the baseline detector (the
/// service's code: training range queries, one baseline per series), with
/// a pass every `interval`.
async fn seasonal_detector(interval: Duration) -> anyhow::Result<Detector<Scenario>> {
    let yaml = format!(
        "interval: {}s\nprometheus: {{url: 'http://scenario.invalid'}}\nmetrics:\n{}",
        interval.as_secs().max(1),
        Scenario::BASELINES
    );
    let config: BaselineDetectorConfig =
        inspector_runtime::load_config_from_str(&yaml).context("demo baseline-detector config")?;
    config.validate().map_err(anyhow::Error::msg)?;
    let detector = Detector::new(
        config,
        Scenario::bundled(),
        inspector_membership::Membership::fixed(Default::default()),
        "demo".into(),
    );
    detector.retrain(Utc::now()).await;
    Ok(detector)
}

/// One detection pass, which publishes its findings and run summary;
/// returns how many messages it published.
async fn baseline_pass(detector: &Detector<Scenario>, bus: &Bus, metrics: &SensorMetrics) -> u64 {
    let run = inspector_baseline_detector::run_pass(detector, bus, metrics, "demo").await;
    u64::from(run.findings) + 1
}

/// Runs the demo; returns the first report.
pub async fn run(
    options: DemoOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<InspectionReport> {
    let bus = Bus::in_process("demo");
    let mut registry = Registry::default();
    let aggregator_metrics = AggregatorMetrics::register(
        &mut registry,
        ["trend-predictor", "baseline-detector", "log-pattern"],
    );
    let sensor_metrics = SensorMetrics::register(&mut registry);
    let baseline_metrics = SensorMetrics::register(&mut Registry::default());

    let aggregator_config = AggregatorConfig {
        report_interval: options.interval,
        sensors: ["trend-predictor", "baseline-detector"]
            .into_iter()
            .map(|name| (name.to_string(), Default::default()))
            .collect(),
        ..AggregatorConfig::default()
    };
    let running = inspector_aggregator::start(
        aggregator_config,
        bus.clone(),
        None,
        aggregator_metrics,
        "demo".into(),
        shutdown.clone(),
    )
    .await
    .context("starting the aggregator")?
    .context("the aggregator stopped before it started")?;

    let yaml = format!(
        "interval: {}s\nprometheus: {{url: 'http://scenario.invalid'}}\nmetrics:\n{}",
        options.interval.as_secs().max(1),
        Scenario::RULES
    );
    let predictor_config: TrendPredictorConfig =
        inspector_runtime::load_config_from_str(&yaml).context("demo trend-predictor config")?;
    predictor_config.validate().map_err(anyhow::Error::msg)?;
    let predictor = TrendPredictor::new(
        predictor_config,
        Scenario::bundled(),
        bus.clone(),
        sensor_metrics,
        inspector_membership::Membership::fixed(Default::default()),
        "demo".into(),
    );

    // First pass, then close a report as soon as the aggregator has taken
    // every message of it (findings plus the run summary).
    let before = running.handle.shared().processed();
    let outcome = predictor.run_once(Utc::now()).await;
    let (log_findings, log_runs) = replay_logs(&bus).await?;
    let baseline = seasonal_detector(options.interval).await?;
    let baseline_messages = baseline_pass(&baseline, &bus, &baseline_metrics).await;
    let expected =
        before + outcome.findings.len() as u64 + 1 + log_findings + log_runs + baseline_messages;
    while running.handle.shared().processed() < expected {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = running
        .handle
        .report_now()
        .await
        .context("the aggregator stopped")?;
    println!("{}", render_report(&first));
    if options.once {
        shutdown.cancel();
        let _ = running.intake.await;
        return Ok(first);
    }

    let ops = OpsState::new(registry);
    ops.set_ready(true);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    let address = listener.local_addr()?;
    let router = ops_router(ops).merge(running.handle.api_router());
    let server = tokio::spawn(serve_http(listener, router, shutdown.clone()));
    println!(
        "Serving http://{address}/v1/report/latest, /v1/reports, /v1/incidents and \
         /v1/anomaly-context (try ?namespace=shop&workload=checkout&format=prompt), \
         also /healthz, /readyz, /metrics. A pass and a report every {}s; Ctrl-C to stop.",
        options.interval.as_secs()
    );
    let mut reports = bus.local_events()?;
    let report_subject = bus.subjects().reports();
    let print_reports = async {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = reports.recv() => match event {
                    Ok(envelope) if envelope.subject == report_subject => {
                        use inspector_domain::wire::WireMessage as _;
                        if let Ok(report) = InspectionReport::from_bytes(&envelope.payload) {
                            println!("{}", render_report(&report));
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
        }
    };
    // The baseline detector runs the service's loops too (passing once
    // only, the report would call it stale): a pass every interval, a
    // refit on its schedule (each starts with one, as in the service).
    let baseline_retrains = inspector_baseline_detector::retrain_loop(
        baseline.clone(),
        inspector_membership::Membership::fixed(Default::default()),
        shutdown.clone(),
        |_| {},
    );
    let baseline_passes = inspector_baseline_detector::pass_loop(
        &baseline,
        &bus,
        &baseline_metrics,
        "demo",
        &shutdown,
    );
    // The sensors run on this task (their passes borrow the scenario).
    tokio::join!(
        predictor.run(shutdown.clone()),
        print_reports,
        baseline_retrains,
        baseline_passes
    );
    let _ = running.intake.await;
    let _ = server.await;
    Ok(first)
}
