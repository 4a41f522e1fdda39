//! The `baseline-detector` binary as deployed, against a real NATS and a
//! real Prometheus: warming up until the first retrain ends, then ready,
//! passing every interval, and stopped by SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{
    NatsServer, OpenMetrics, PrometheusServer, ServiceProcess, free_port, http_get, unique_name,
};

/// Prometheus with three days of a 5-minute daily cycle up to now.
fn daily_requests() -> PrometheusServer {
    let t = chrono::Utc::now().timestamp() / 300 * 300;
    let samples: Vec<(i64, f64)> = (0..=3 * 288)
        .map(|k| {
            let ts = t - 3 * 86_400 + k * 300;
            let phase = (ts % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
            (ts, 100.0 + 30.0 * phase.sin() + (k % 7) as f64 * 0.3)
        })
        .collect();
    PrometheusServer::start_with_openmetrics(
        &OpenMetrics::new()
            .gauge("requests", &[(&[("service", "checkout")], samples)])
            .finish(),
    )
}

#[test]
fn retrains_passes_and_stops_on_sigterm() {
    inspector_runtime::install_crypto_provider();
    let nats = NatsServer::start();
    let prometheus = daily_requests();
    let port = free_port();
    let config = std::env::temp_dir().join(format!("{}.yaml", unique_name("baseline-bin")));
    std::fs::write(
        &config,
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: requests, query: requests}\n",
    )
    .unwrap();
    let mut child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_baseline-detector"))
            .arg("--config")
            .arg(&config)
            .env("INSPECTOR_PROMETHEUS__URL", prometheus.url())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let get = |path: &str| http_get(port, path);
    // Ready once the first retrain has fitted (until then: warming up),
    // and passing every second after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "never ready with passes done");
        if let (Ok((200, _)), Ok((200, metrics))) = (get("/readyz"), get("/metrics"))
            && metrics.lines().any(|line| {
                line.strip_prefix("inspector_sensor_passes_total ")
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .is_some_and(|n| n >= 3.0)
            })
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get("/healthz").unwrap().0, 200);
    let status = child.terminate(Duration::from_secs(15));
    let _ = std::fs::remove_file(&config);
    assert!(status.success(), "{status}");
}
/// Issue 27: credentials in every URL the service holds never reach its
/// log or `/metrics`: first with every peer unreachable (connection errors
/// and retries logged), then with NATS up (authenticated by the
/// credentials in its URL) and Prometheus refusing (retrain and pass errors
/// logged).
#[test]
fn planted_secrets_appear_nowhere() {
    const SECRET: &str = "S3cretPlanted";
    let (_nats, authed_url, unreachable) =
        inspector_test_harness::nats_with_url_credentials("inspector", SECRET);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: requests, query: requests}\n",
    )
    .unwrap();
    for (nats_url, done) in [
        (unreachable, "NATS not available yet"),
        (authed_url, "inspector_sensor_passes_total 2"),
    ] {
        let port = free_port();
        inspector_test_harness::assert_secret_never_shown(
            Command::new(env!("CARGO_BIN_EXE_baseline-detector"))
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
