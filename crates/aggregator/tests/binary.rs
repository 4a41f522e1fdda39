//! The `aggregator` binary as deployed: config errors, health before NATS is
//! up, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{
    NatsServer, RedisServer, ServiceProcess, free_port, http_get, unique_name,
};

#[test]
fn bad_config_exits_64_naming_the_field() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "report_intervall: 10s\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aggregator"))
        .arg("--config")
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("report_intervall"), "{stderr}");
}

#[test]
fn waits_for_nats_then_serves_and_stops_on_sigterm() {
    inspector_runtime::install_crypto_provider();
    let redis = RedisServer::start();
    // NATS is started only after the aggregator: it must wait, healthy but not ready.
    let nats_port = free_port();
    let port = free_port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "report_interval: 1s\n").unwrap();
    let mut child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_aggregator"))
            .arg("--config")
            .arg(file.path())
            .env(
                "INSPECTOR_NATS__URL",
                format!("nats://127.0.0.1:{nats_port}"),
            )
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_REDIS__URL", redis.url())
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let get = |path: &str| http_get(port, path).map(|(status, _)| status);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get("/healthz").ok() != Some(200) {
        assert!(Instant::now() < deadline, "health never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get("/readyz").unwrap(), 503, "not ready without NATS");
    assert_eq!(get("/v1/report/latest").unwrap(), 503);

    let _nats = NatsServer::start_on_port(nats_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("/readyz").ok() != Some(200) {
        assert!(Instant::now() < deadline, "never ready after NATS came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while get("/v1/report/latest").ok() != Some(200) {
        assert!(
            Instant::now() < deadline,
            "no report within 10 s at a 1 s interval"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = child.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

/// Issue 10, case 5: a wrong Redis password is a failed readiness that
/// says why, and the report says dedup is degraded, even with no findings.
#[test]
fn a_wrong_redis_password_fails_readiness_with_the_reason() {
    inspector_runtime::install_crypto_provider();
    let redis = RedisServer::start_with(&["--requirepass", "right-secret"]);
    let nats = NatsServer::start();
    let port = free_port();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "report_interval: 1s\n").unwrap();
    let url = redis.url().replace("redis://", "redis://:wrong-secret@");
    let mut child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_aggregator"))
            .arg("--config")
            .arg(file.path())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_REDIS__URL", url)
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let get = |path: &str| http_get(port, path);
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Ok((503, body)) = get("/readyz")
            && body.contains("refuses")
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never named the refusal"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.to_lowercase().contains("pass") || body.contains("auth"),
        "{body}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, report)) = get("/v1/report/latest") {
            let report: serde_json::Value = serde_json::from_str(&report).unwrap();
            if report["dedup_degraded"] == true {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the report never said degraded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

/// Health and metrics can live on their own address (`ops_listen`), apart
/// from the API and its token.
#[test]
fn health_and_metrics_on_their_own_address() {
    inspector_runtime::install_crypto_provider();
    let redis = RedisServer::start();
    let nats = NatsServer::start();
    let (port, ops_port) = (free_port(), free_port());
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "report_interval: 1s\n").unwrap();
    let mut child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_aggregator"))
            .arg("--config")
            .arg(file.path())
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("ops"))
            .env("INSPECTOR_REDIS__URL", redis.url())
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("INSPECTOR_OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(ops_port, "/readyz").ok().map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "never ready on the ops address");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http_get(ops_port, "/metrics").unwrap().0, 200);
    assert_eq!(http_get(ops_port, "/v1/report/latest").unwrap().0, 404);
    assert_eq!(http_get(port, "/healthz").unwrap().0, 404);
    assert_eq!(http_get(port, "/metrics").unwrap().0, 404);
    assert_eq!(http_get(port, "/v1/anomaly-context").unwrap().0, 200);
    assert!(child.terminate(Duration::from_secs(20)).success());
}
