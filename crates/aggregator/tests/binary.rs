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

/// Issue 27: credentials in every URL the aggregator holds (NATS, Redis,
/// Alertmanager, with a token in its query) never reach its log,
/// `/metrics` or reports: first with every peer unreachable, then with
/// NATS up (authenticated by its URL's credentials), Redis and
/// Alertmanager unreachable, and a finding that makes it push.
#[test]
fn planted_secrets_appear_nowhere() {
    const SECRET: &str = "S3cretPlanted";
    inspector_runtime::install_crypto_provider();
    let (_nats, authed_url, unreachable) =
        inspector_test_harness::nats_with_url_credentials("inspector", SECRET);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (nats_url, publish) in [(unreachable, false), (authed_url, true)] {
        let port = free_port();
        let prefix = unique_name("secret");
        let log = tempfile::NamedTempFile::new().unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            format!(
                "report_interval: 1s\nalertmanager:\n  urls: ['http://am:{SECRET}@127.0.0.1:{}/?api_token={SECRET}']\n  timeout: 1s\n",
                free_port()
            ),
        )
        .unwrap();
        let mut child = ServiceProcess::spawn(
            Command::new(env!("CARGO_BIN_EXE_aggregator"))
                .arg("--config")
                .arg(file.path())
                .env("INSPECTOR_NATS__URL", &nats_url)
                .env("INSPECTOR_NATS__SUBJECT_PREFIX", &prefix)
                .env(
                    "INSPECTOR_REDIS__URL",
                    format!("redis://:{SECRET}@127.0.0.1:{}", free_port()),
                )
                .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "debug")
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap()),
        );
        let get = |path: &str| http_get(port, path);
        let deadline = Instant::now() + Duration::from_secs(30);
        if publish {
            while get("/readyz").map(|(s, _)| s) != Ok(200) {
                assert!(Instant::now() < deadline, "never ready");
                std::thread::sleep(Duration::from_millis(100));
            }
            runtime.block_on(async {
                let config = inspector_bus::NatsConfig::new(&nats_url, &prefix);
                let bus = inspector_bus::Bus::connect(&config, "test").await.unwrap();
                let finding = inspector_domain::fixtures::anomaly("rps", "b-0", chrono::Utc::now());
                bus.publish_finding(&finding).await.unwrap();
            });
        }
        let mut seen = String::new();
        let done = |logged: &str| {
            if publish {
                logged.contains("alertmanager") && logged.contains("push")
            } else {
                logged.contains("nats not available yet")
            }
        };
        while !done(&seen) {
            assert!(Instant::now() < deadline, "never got that far:\n{seen}");
            std::thread::sleep(Duration::from_millis(200));
            seen = std::fs::read_to_string(log.path()).unwrap().to_lowercase();
        }
        let shown: Vec<String> = ["/metrics", "/v1/report/latest", "/readyz"]
            .iter()
            .filter_map(|path| get(path).ok().map(|(_, body)| body))
            .collect();
        child.terminate(Duration::from_secs(15));
        let logged = std::fs::read_to_string(log.path()).unwrap();
        assert!(!logged.contains(SECRET), "secret in the log:\n{logged}");
        for body in shown {
            assert!(!body.contains(SECRET), "secret served:\n{body}");
        }
    }
}
