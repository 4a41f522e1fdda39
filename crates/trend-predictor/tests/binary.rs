//! The `trend-predictor` binary as deployed: config errors, env overrides,
//! ops endpoints, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{NatsServer, OpenMetrics, PrometheusServer, unique_name};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let t = chrono::Utc::now().timestamp() / 60 * 60;
    let samples: Vec<(i64, f64)> = (0..=60)
        .map(|i| (t - 3600 + i * 60, 50.0 + i as f64 / 6.0))
        .collect();
    let prometheus = PrometheusServer::start_with_openmetrics(
        &OpenMetrics::new().gauge("disk", &[(&[], samples)]).finish(),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "interval: 1s\nprometheus: {url: 'http://placeholder:1'}\nmetrics:\n  - {name: disk, query: disk, threshold: 90}\n",
    )
    .unwrap();
    let mut child = KillOnDrop(
        binary()
            .arg("--config")
            .arg(file.path())
            .env("INSPECTOR_PROMETHEUS__URL", prometheus.url())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        runtime.block_on(async move {
            let response = reqwest::get(url).await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
    };
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

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
