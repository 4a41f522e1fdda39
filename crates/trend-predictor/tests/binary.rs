//! The `trend-predictor` binary as deployed: config errors, env overrides,
//! ops endpoints, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{
    NatsServer, OpenMetrics, PrometheusServer, ServiceProcess, free_port, http_get, unique_name,
};

/// Prometheus with an hour of `disk` rising 10 points an hour to 60 now.
fn rising_disk() -> PrometheusServer {
    let t = chrono::Utc::now().timestamp() / 60 * 60;
    let samples: Vec<(i64, f64)> = (0..=60)
        .map(|i| (t - 3600 + i * 60, 50.0 + i as f64 / 6.0))
        .collect();
    PrometheusServer::start_with_openmetrics(
        &OpenMetrics::new().gauge("disk", &[(&[], samples)]).finish(),
    )
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trend-predictor"))
}

#[test]
fn bad_config_exits_64_naming_the_field() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "prometheus: {url: 'http://p:9090'}\nmetrics:\n  - {name: a, query: '', threshold: 1}\n",
    )
    .unwrap();
    let output = binary().arg("--config").arg(file.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("metrics[0].query: must not be empty"),
        "{stderr}"
    );

    let output = binary()
        .arg("--config")
        .arg(file.path())
        .env("INSPECTOR_CONCURRENCY", "lots")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("concurrency"), "{stderr}");

    let output = binary()
        .arg("--config")
        .arg("/nonexistent/config.yaml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/config.yaml"));
}

#[test]
fn runs_with_env_overrides_and_stops_on_sigterm() {
    inspector_runtime::install_crypto_provider();
    let nats = NatsServer::start();
    let prometheus = rising_disk();
    let collector = OtlpCollector::start();
    let port = free_port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: disk, query: disk, threshold: 90}\n",
    )
    .unwrap();
    let mut child = ServiceProcess::spawn(
        binary()
            .arg("--config")
            .arg(file.path())
            .env("INSPECTOR_PROMETHEUS__URL", prometheus.url())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let get = |path: &str| http_get(port, path);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "never ready with a pass done");
        if let (Ok((200, _)), Ok((200, metrics))) = (get("/readyz"), get("/metrics"))
            && metrics.contains("inspector_sensor_passes_total 1")
        {
            assert!(
                metrics.contains("inspector_sensor_findings_total 1"),
                "{metrics}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get("/healthz").unwrap().0, 200);

    let status = child.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    // The pass spans were exported over OTLP/HTTP (flushed at shutdown at the latest).
    let exports = collector.requests();
    assert!(
        exports.iter().any(
            |(path, body)| path == "/v1/traces" && body.windows(10).any(|w| w == b"trend_pass")
        ),
        "no trend_pass span exported: {:?}",
        exports
            .iter()
            .map(|(p, b)| (p, b.len()))
            .collect::<Vec<_>>()
    );
}

/// A received request's path and body.
type Request = (String, Vec<u8>);

/// A minimal OTLP/HTTP receiver: records each request's path and body.
struct OtlpCollector {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl OtlpCollector {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                record.lock().unwrap().push((path, body));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        OtlpCollector { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// Issue 10, case 4: SIGTERM while NATS is down. The process is gone within
/// its grace (not after minutes of retries), and the findings it could not
/// send are in its spool for the next start.
#[test]
fn sigterm_with_nats_down_exits_within_the_grace_and_spools() {
    inspector_runtime::install_crypto_provider();
    let mut nats = NatsServer::start();
    let prometheus = rising_disk();
    let spool_dir = tempfile::tempdir().unwrap();
    let spool = spool_dir.path().join("outbox.spool");
    let port = free_port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: disk, query: disk, threshold: 90}\n",
    )
    .unwrap();
    let mut child = ServiceProcess::spawn(
        binary()
            .arg("--config")
            .arg(file.path())
            .env("INSPECTOR_PROMETHEUS__URL", prometheus.url())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_NATS__SPOOL_PATH", spool.display().to_string())
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("SHUTDOWN_GRACE_SECONDS", "6")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let metrics = || {
        http_get(port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics().contains("inspector_sensor_findings_total 1") {
        assert!(Instant::now() < deadline, "no finding published");
        std::thread::sleep(Duration::from_millis(100));
    }
    nats.stop();
    // Passes go on and queue their findings.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !metrics()
        .lines()
        .any(|l| l.starts_with("inspector_sensor_publish_pending ") && !l.ends_with(" 0"))
    {
        assert!(
            Instant::now() < deadline,
            "nothing queued while NATS is down"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopping = Instant::now();
    let status = child.terminate(Duration::from_secs(20));
    let took = stopping.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} with a 6 s grace"
    );
    let spooled = inspector_bus::spool::read(&spool).unwrap();
    assert!(!spooled.is_empty(), "the unsent findings were spooled");
    assert!(
        spooled.iter().all(|e| e.msg_id.is_some()),
        "each keeps its Nats-Msg-Id"
    );
}

/// Issue 27: credentials in every URL the service holds never reach its
/// log or `/metrics`: first with every peer unreachable (connection errors
/// and retries logged), then with NATS up (authenticated by the
/// credentials in its URL) and Prometheus refusing (pass errors logged).
#[test]
fn planted_secrets_appear_nowhere() {
    const SECRET: &str = "S3cretPlanted";
    let (_nats, authed_url, unreachable) =
        inspector_test_harness::nats_with_url_credentials("inspector", SECRET);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: disk, query: disk, threshold: 90}\n",
    )
    .unwrap();
    for (nats_url, done) in [
        (unreachable, "NATS not available yet"),
        (authed_url, "inspector_sensor_passes_total 2"),
    ] {
        let port = free_port();
        inspector_test_harness::assert_secret_never_shown(
            binary()
                .arg("--config")
                .arg(file.path())
                .env(
                    "INSPECTOR_PROMETHEUS__URL",
                    format!("http://reader:{SECRET}@127.0.0.1:{}", free_port()),
                )
                .env("INSPECTOR_NATS__URL", &nats_url)
                .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("secret"))
                .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}")),
            port,
            SECRET,
            &["/metrics", "/readyz"],
            |log, metrics| log.contains(done) || metrics.contains(done),
        );
    }
}
