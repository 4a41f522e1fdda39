//! Dedup over TLS to a real redis-server with a private CA (issue 10,
//! case 9): trusted through `redis.tls.ca_file`, refused without it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use inspector_aggregator::RedisConfig;
use inspector_aggregator::config::RedisTlsConfig;
use inspector_aggregator::dedup::{Deduplicator, Verdict, redis_connection};
use inspector_test_harness::{RedisServer, free_port, require_binary, unique_name};

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certificates(dir: &Path) {
    let openssl = require_binary("openssl", "openssl");
    let run = |args: &[&str]| {
        let output = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=inspector test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test]
async fn dedup_over_tls_with_a_private_ca() {
    inspector_runtime::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let tls_port = free_port();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let _redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &path("server.crt"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    let config = RedisConfig {
        url: format!("rediss://127.0.0.1:{tls_port}"),
        key_prefix: unique_name("tls"),
        timeout: Duration::from_secs(2),
        tls: RedisTlsConfig {
            ca_file: Some(dir.path().join("ca.crt")),
            ..RedisTlsConfig::default()
        },
        ..RedisConfig::default()
    };
    let mut trusted = Deduplicator::new(
        Some(redis_connection(&config).unwrap()),
        &config,
        Duration::from_secs(60),
    );
    let now = Utc::now();
    assert_eq!(trusted.check("k", "id-1", now).await, Verdict::New);
    assert_eq!(trusted.check("k", "id-2", now).await, Verdict::Duplicate);
    assert_eq!(trusted.take_status(), ("redis".to_string(), false));

    // Without the CA the server's certificate is not trusted: degraded.
    let untrusted_config = RedisConfig {
        tls: RedisTlsConfig::default(),
        ..config.clone()
    };
    let mut untrusted = Deduplicator::new(
        Some(redis_connection(&untrusted_config).unwrap()),
        &untrusted_config,
        Duration::from_secs(60),
    );
    untrusted.check("k2", "id-3", now).await;
    let (backend, degraded) = untrusted.take_status();
    assert!(degraded, "{backend}");
}
