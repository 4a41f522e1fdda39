//! The `inspector` CLI against a real NATS that requires credentials
//! (issue 10, case 9: the CLI takes the services' NATS options).

use std::process::Command;

use inspector_test_harness::{NatsServer, unique_name};

fn report(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_inspector"))
        .arg("report")
        .args(args)
        .env_remove("NATS_USER")
        .env_remove("NATS_PASSWORD")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn report_uses_nats_credentials() {
    let nats = NatsServer::start_with(&["--user", "operator", "--pass", "s3cret-pass"]);
    let prefix = unique_name("cli");
    let url = nats.url();
    // Without credentials the server refuses the connection itself.
    let (ok, stderr) = report(&["--nats-url", &url, "--prefix", &prefix]);
    assert!(!ok);
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
    // With them, the connection works; no aggregator answers here.
    let (ok, stderr) = report(&[
        "--nats-url",
        &url,
        "--prefix",
        &prefix,
        "--nats-user",
        "operator",
        "--nats-password",
        "s3cret-pass",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("no aggregator answered") || stderr.contains("no answer"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pass"),
        "the password leaked: {stderr}"
    );
}
