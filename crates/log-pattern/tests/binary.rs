//! The `log-pattern` binary: config errors exit 64 naming the field; a file
//! source mines and publishes, and SIGTERM saves the snapshot.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{NatsServer, ServiceProcess, free_port, unique_name};

#[test]
fn bad_config_exits_64_naming_the_field() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "source: {kind: kubernetes, namespaces: []}\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_log-pattern"))
        .arg("--config")
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("source.namespaces"), "{stderr}");
}

#[test]
fn file_source_runs_and_snapshots_on_sigterm() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("app.log");
    let mut text: Vec<u8> = (0..20)
        .flat_map(|i| format!("worker {i} finished job in {i}ms\n").into_bytes())
        .collect();
    text.extend_from_slice(b"disk quota exceeded for volume \xff\xfe data\n");
    std::fs::write(&logs, text).unwrap();
    let snapshot = dir.path().join("state.snapshot");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "warmup_lines: 10\nsnapshot: {{path: '{}'}}\nsource: {{kind: file, path: '{}', workload: batch}}\n",
            snapshot.display(),
            logs.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_log-pattern"))
            .arg("--config")
            .arg(&config)
            .env("INSPECTOR_NATS__URL", nats.url())
            .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("bin"))
            .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let metrics =
        |port: u16| inspector_test_harness::http_get(port, "/metrics").map(|(_, body)| body);
    inspector_runtime::install_crypto_provider();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "the invalid-UTF-8 line never became a finding"
        );
        if metrics(port).is_ok_and(|m| m.contains("inspector_sensor_findings_total 1")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(snapshot.is_file(), "snapshot saved on shutdown");
}

/// Issue 27: credentials in the NATS URL and the Kubernetes API URL never
/// reach the log or `/metrics`: first with NATS unreachable, then with NATS
/// up (authenticated by its URL's credentials) and the API unreachable.
#[test]
fn planted_secrets_appear_nowhere() {
    const SECRET: &str = "S3cretPlanted";
    let (_nats, authed_url, unreachable) =
        inspector_test_harness::nats_with_url_credentials("inspector", SECRET);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "interval: 1s\nsource: {{kind: kubernetes, namespaces: [default], api_url: 'http://u:{SECRET}@127.0.0.1:{}'}}\n",
            free_port()
        ),
    )
    .unwrap();
    for (nats_url, done) in [
        (unreachable, "NATS not available yet"),
        // The kube client logs each failed request (its URL) as an error.
        (authed_url, "/api/v1/namespaces/default/pods"),
    ] {
        let port = free_port();
        inspector_test_harness::assert_secret_never_shown(
            Command::new(env!("CARGO_BIN_EXE_log-pattern"))
                .arg("--config")
                .arg(file.path())
                .env("INSPECTOR_NATS__URL", &nats_url)
                .env("INSPECTOR_NATS__SUBJECT_PREFIX", unique_name("secret"))
                .env("INSPECTOR_LISTEN", format!("127.0.0.1:{port}")),
            port,
            SECRET,
            &["/metrics", "/readyz"],
            |log, _| log.contains(done) && log.contains("ERROR"),
        );
    }
}
