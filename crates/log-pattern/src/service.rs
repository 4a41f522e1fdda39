//! The running sensor: lines in from a source, templates learnt per
//! workload, a `log_pattern` finding for each new one after warm-up, a run
//! summary and a snapshot every interval, a last snapshot on shutdown.

use inspector_membership::Membership;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use inspector_bus::Bus;
use inspector_domain::{Finding, LogPatternDetail, Observation, SensorError, SensorRun, Severity};
use inspector_runtime::{SensorHost, SensorMetrics};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{LogPatternConfig, SourceConfig};
use crate::miner::{LineOrigin, Miner, NewPattern};
use crate::source::{SourceEvent, follow_file, follow_kubernetes};

/// Name of this sensor in findings, run summaries and subjects.
pub const SENSOR: &str = "log-pattern";

/// Most errors carried in one run summary.
const MAX_ERRORS_PER_RUN: usize = 50;

/// Words that make a new template a warning rather than information.
const ALARMING: &[&str] = &[
    "error",
    "exception",
    "fatal",
    "panic",
    "refused",
    "failed",
    "failure",
    "timeout",
    "timed out",
    "denied",
    "killed",
    "oom",
    "unreachable",
    "traceback",
];

/// The sensor's state between passes.
#[derive(Debug)]
pub struct LogPatternSensor {
    config: LogPatternConfig,
    miner: Miner,
    bus: Bus,
    metrics: SensorMetrics,
    instance: String,
    window_start: DateTime<Utc>,
    findings: u32,
    errors: Vec<SensorError>,
    published_findings: u64,
    runs: u64,
    /// New templates per workload this window, for the rate limit.
    burst: std::collections::HashMap<String, Burst>,
}

/// A workload's new templates in the current window.
#[derive(Debug)]
struct Burst {
    reported: u32,
    held_back: u64,
    /// The last one held back, for the roll-up.
    last: Option<(LineOrigin, NewPattern)>,
}

impl LogPatternSensor {
    /// A sensor with its templates restored from the snapshot file, if any.
    pub fn new(
        config: LogPatternConfig,
        bus: Bus,
        metrics: SensorMetrics,
        instance: String,
    ) -> Self {
        let masker = config.masker().expect("masks validated at start");
        let mut miner = Miner::new(
            config.drain_config(),
            masker,
            config.warmup_lines,
            config.max_line_bytes,
        );
        let mut errors = Vec::new();
        if let Some(path) = &config.snapshot.path {
            match std::fs::read(path) {
                Ok(bytes) => match miner.restore(&bytes) {
                    Ok(workloads) => {
                        tracing::info!(path = %path.display(), workloads, "templates restored")
                    }
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "snapshot unusable; starting empty");
                        errors.push(SensorError {
                            subject: path.display().to_string(),
                            message: e.to_string(),
                        });
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(SensorError {
                    subject: path.display().to_string(),
                    message: format!("cannot read snapshot: {e}"),
                }),
            }
        }
        LogPatternSensor {
            config,
            miner,
            bus,
            metrics,
            instance,
            window_start: Utc::now(),
            findings: 0,
            errors,
            published_findings: 0,
            runs: 0,
            burst: Default::default(),
        }
    }

    /// Takes events until `shutdown` (or until the source closes, when
    /// `stop_when_source_ends`), then closes a last run and saves a snapshot.
    /// Returns what it published: (findings, run summaries).
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<SourceEvent>,
        shutdown: CancellationToken,
        stop_when_source_ends: bool,
    ) -> (u64, u64) {
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.interval,
            self.config.interval,
        );
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.close_run().await,
                event = events.recv() => match event {
                    Some(SourceEvent::Line { origin, text }) => self.on_line(&origin, &text).await,
                    Some(SourceEvent::Error { subject, message }) => self.on_error(subject, message),
                    None if stop_when_source_ends => break,
                    None => {
                        // The source is done (a file): keep serving until shutdown.
                        shutdown.cancelled().await;
                        break;
                    }
                },
            }
        }
        self.close_run().await;
        self.bus
            .drain_outbox(inspector_runtime::service_main::drain_budget())
            .await;
        (self.published_findings, self.runs)
    }

    async fn on_line(&mut self, origin: &LineOrigin, text: &str) {
        let Some(pattern) = self.miner.learn(&origin.workload, text) else {
            return;
        };
        let burst = self.burst.entry(origin.workload.clone()).or_insert(Burst {
            reported: 0,
            held_back: 0,
            last: None,
        });
        if burst.reported >= self.config.max_new_patterns_per_window {
            // Still learned (never reported later), rolled up at the window's end.
            burst.held_back += 1;
            burst.last = Some((origin.clone(), pattern));
            return;
        }
        burst.reported += 1;
        let finding = pattern_finding(
            origin,
            &pattern,
            self.config.shadow,
            &self.instance,
            Utc::now(),
        );
        tracing::info!(workload = %origin.workload, template = %pattern.template, "new log pattern");
        self.publish(finding).await;
    }

    async fn publish(&mut self, finding: Finding) {
        self.findings += 1;
        self.published_findings += 1;
        match self.bus.publish_finding(&finding).await {
            Ok(()) => {
                self.metrics.findings.inc();
            }
            Err(e) => {
                // Kept in the bus outbox and retried; say so in the run.
                self.metrics.error("publish");
                self.on_error(
                    "nats".into(),
                    format!(
                        "publish failed, finding queued for retry: {}",
                        inspector_runtime::error_chain(&e)
                    ),
                );
            }
        }
    }

    fn on_error(&mut self, subject: String, message: String) {
        self.metrics.error("source");
        if self.errors.len() < MAX_ERRORS_PER_RUN {
            self.errors.push(SensorError { subject, message });
        }
    }

    /// One finding per workload whose burst of new templates went over the
    /// window's limit: how many more, and the last of them.
    async fn roll_up_bursts(&mut self, now: DateTime<Utc>) {
        let bursts = std::mem::take(&mut self.burst);
        for (workload, burst) in bursts {
            let Some((origin, pattern)) = burst.last else {
                continue;
            };
            let finding = burst_finding(
                &origin,
                &pattern,
                burst.held_back,
                self.config.max_new_patterns_per_window,
                self.config.shadow,
                &self.instance,
                now,
            );
            tracing::warn!(%workload, held_back = burst.held_back, "burst of new log shapes rolled up");
            self.publish(finding).await;
        }
    }

    /// Publishes the run summary of the window and saves the snapshot.
    async fn close_run(&mut self) {
        let now = Utc::now();
        self.roll_up_bursts(now).await;
        if let Some(path) = self.config.snapshot.path.clone()
            && let Err(e) = write_atomically(&path, &self.miner.snapshot())
        {
            self.on_error(
                path.display().to_string(),
                format!("saving the snapshot failed: {e}"),
            );
        }
        let run = SensorRun {
            sensor: SENSOR.into(),
            instance: self.instance.clone(),
            started_at: self.window_start,
            finished_at: now,
            findings: std::mem::take(&mut self.findings),
            errors: std::mem::take(&mut self.errors),
            interval_seconds: self.config.interval.as_secs().max(1),
            shadow: self.config.shadow,
            // Warm-up here is per workload and never hides a finding.
            warming_up: 0,
        };
        self.window_start = now;
        self.runs += 1;
        if let Err(e) = self.bus.publish_run(&run).await {
            self.metrics.error("publish");
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "run summary queued for retry"
            );
        }
        self.metrics.window_done();
        self.metrics
            .publish_pending
            .set(self.bus.pending().await as i64);
    }

    /// Lines and live templates per workload.
    pub fn stats(&self) -> BTreeMap<String, (u64, usize)> {
        self.miner.stats()
    }
}

/// The finding for a new template: dedup key from workload + cluster id.
pub fn pattern_finding(
    origin: &LineOrigin,
    pattern: &NewPattern,
    shadow: bool,
    instance: &str,
    now: DateTime<Utc>,
) -> Finding {
    let (observation, detail) = pattern_parts(origin, pattern, shadow, instance, now);
    Finding::log_pattern(observation, detail)
}

/// The roll-up of a burst: `held_back` more new shapes of one workload than
/// the window's limit let through, with the last of them as the example.
pub fn burst_finding(
    origin: &LineOrigin,
    last: &NewPattern,
    held_back: u64,
    limit: u32,
    shadow: bool,
    instance: &str,
    now: DateTime<Utc>,
) -> Finding {
    let (mut observation, detail) = pattern_parts(origin, last, shadow, instance, now);
    observation.key = format!("{}#more-new-shapes", origin.workload);
    observation.severity = Severity::Warning;
    observation.description = format!(
        "{} logged {held_back} more line shapes never seen before in this window \
         (beyond the {limit} reported); the last: {}",
        origin.workload, last.template
    );
    Finding::log_pattern(observation, detail)
}

fn pattern_parts(
    origin: &LineOrigin,
    pattern: &NewPattern,
    shadow: bool,
    instance: &str,
    now: DateTime<Utc>,
) -> (Observation, LogPatternDetail) {
    let lower = pattern.template.to_lowercase();
    let severity = if ALARMING.iter().any(|word| lower.contains(word)) {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut labels = BTreeMap::from([("workload".to_string(), origin.workload.clone())]);
    if !origin.namespace.is_empty() {
        labels.insert("namespace".into(), origin.namespace.clone());
    }
    (
        Observation {
            key: format!("{}#{}", origin.workload, pattern.cluster_id),
            labels,
            severity,
            description: format!(
                "{} logged a line shape never seen before: {}",
                origin.workload, pattern.template
            ),
            source: [
                origin.namespace.as_str(),
                origin.pod.as_str(),
                origin.container.as_str(),
            ]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/"),
            detected_at: now,
            shadow,
            instance: instance.to_string(),
        },
        LogPatternDetail {
            template: pattern.template.clone(),
            example: pattern.example.clone(),
        },
    )
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// crash never leaves a half-written snapshot.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Starts the configured source; its events arrive on the returned channel.
pub async fn start_source(
    config: &LogPatternConfig,
    shutdown: CancellationToken,
) -> Result<mpsc::Receiver<SourceEvent>, ServeError> {
    let (sender, receiver) = mpsc::channel(10_000);
    match &config.source {
        SourceConfig::File {
            path,
            workload,
            follow,
        } => {
            tokio::spawn(follow_file(
                path.clone(),
                workload.clone(),
                *follow,
                config.max_line_bytes,
                sender,
                shutdown,
            ));
        }
        SourceConfig::Kubernetes(kubernetes) => {
            let client = match &kubernetes.api_url {
                Some(url) => {
                    let config = inspector_membership::api_config(url).map_err(|source| {
                        ServeError::ApiUrl {
                            url: inspector_domain::redact_url(url),
                            source,
                        }
                    })?;
                    kube::Client::try_from(config).map_err(ServeError::Kubernetes)?
                }
                None => kube::Client::try_default()
                    .await
                    .map_err(ServeError::NoKubeConfig)?,
            };
            tokio::spawn(follow_kubernetes(
                client,
                kubernetes.clone(),
                Membership::start(&config.shard, shutdown.clone())
                    .await
                    .map_err(ServeError::Membership)?,
                config.max_line_bytes,
                sender,
                shutdown,
            ));
        }
    }
    Ok(receiver)
}

/// Errors that stop the service from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Membership(inspector_membership::MembershipError),
    #[error("source.api_url {url:?} is not a URL")]
    ApiUrl {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("kubernetes client")]
    Kubernetes(#[source] kube::Error),
    #[error("no in-cluster config or kubeconfig for the kubernetes source")]
    NoKubeConfig(#[source] kube::Error),
    #[error("ops server")]
    Ops(#[from] std::io::Error),
}

/// The whole service: ops endpoints on `listener`, mining until `shutdown`.
pub async fn serve(
    config: LogPatternConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let host = SensorHost::start(listener, &shutdown);
    if !config.enabled {
        return Ok(host.idle_disabled(SENSOR, &shutdown).await?);
    }
    let Some(bus) = Bus::connect_with_retry(
        &config.nats,
        &format!("{SENSOR}/{}", host.instance),
        &shutdown,
    )
    .await
    else {
        return Ok(host.finish().await?);
    };
    let events = start_source(&config, shutdown.clone()).await?;
    host.ops.set_ready(true);
    tracing::info!(shard = ?config.shard, shadow = config.shadow, "log-pattern running");
    LogPatternSensor::new(config, bus, host.metrics.clone(), host.instance.clone())
        .run(events, shutdown, false)
        .await;
    Ok(host.finish().await?)
}

#[cfg(test)]
mod burst_tests {
    use inspector_bus::Incoming;

    use super::*;

    /// Issue 10, case 7: a burst of new shapes (binary output, ids in every
    /// line) is a few findings and one roll-up, not thousands.
    #[tokio::test]
    async fn a_burst_of_new_shapes_is_rolled_up() {
        let config: LogPatternConfig = inspector_runtime::load_config_from_str(
            "warmup_lines: 5\nmax_new_patterns_per_window: 3\ninterval: 1h\n\
             source: {kind: file, path: '-', workload: app}\n",
        )
        .unwrap();
        config.validate().unwrap();
        let bus = Bus::in_process("burst");
        let mut inbox = bus
            .inbox("aggregator", std::time::Duration::from_secs(30), 10_000)
            .await
            .unwrap();
        let metrics = SensorMetrics::register(&mut Default::default());
        let sensor = LogPatternSensor::new(config, bus.clone(), metrics, "lp-0".into());
        let (lines, events) = mpsc::channel(10_000);
        let origin = LineOrigin {
            workload: "app".into(),
            namespace: String::new(),
            pod: String::new(),
            container: "-".into(),
        };
        for _ in 0..5 {
            lines
                .send(SourceEvent::Line {
                    origin: origin.clone(),
                    text: "request served ok".into(),
                })
                .await
                .unwrap();
        }
        // 50 shapes that can never merge (different token counts).
        for i in 1..=50 {
            lines
                .send(SourceEvent::Line {
                    origin: origin.clone(),
                    text: format!("{}happened", "strange ".repeat(i)),
                })
                .await
                .unwrap();
        }
        drop(lines);
        let (published, _) = sensor.run(events, CancellationToken::new(), true).await;
        assert_eq!(published, 4, "3 findings and 1 roll-up");
        let mut findings = Vec::new();
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(std::time::Duration::from_millis(200), inbox.next()).await
        {
            if let Incoming::Finding(finding) = delivery.incoming {
                findings.push(*finding);
            }
        }
        assert_eq!(findings.len(), 4);
        let rollup = findings
            .iter()
            .find(|f| f.key == "app#more-new-shapes")
            .expect("a roll-up");
        assert!(
            rollup.description.contains("47 more"),
            "{}",
            rollup.description
        );
    }
}
