//! `inspector demo` as a user runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inspector_test_harness::{ServiceProcess, free_port};

fn inspector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inspector"))
}

#[test]
fn demo_once_prints_the_scenarios_findings() {
    let output = inspector()
        .args(["demo", "--once"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("findings: 6 (dynamic_anomaly: 1, log_pattern: 2, trend_breach: 3)"),
        "{stdout}"
    );
    // The log scenario: two new shapes after the warm-up; variations of known ones are not new.
    for template in [
        "java.net.SocketTimeoutException: Read timed out calling payments at <IP>",
        "circuit breaker OPEN for payments after <NUM> consecutive failures",
    ] {
        assert!(
            stdout.contains(&format!("never seen before: {template}")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("never seen before: GET"), "{stdout}");
    assert!(
        stdout.contains("CRITICAL  trend_breach    email_queue_depth{queue=\"outbound-email\"}"),
        "{stdout}"
    );
    assert!(stdout.contains("goes above 90 in 2.0 h"), "{stdout}");
    assert!(stdout.contains("goes below 10 in 1.5 h"), "{stdout}");
    // The flat latency series and the flat root filesystem are not findings.
    assert!(
        !stdout.contains("checkout_p99_latency_seconds{"),
        "{stdout}"
    );
    assert!(!stdout.contains("mount=\"/\""), "{stdout}");
    // The seasonal scenario: checkout's spike is critical, far beyond 5σ of
    // its usual rate for the hour (about 177 with a 3-hour-old daily peak);
    // search at its ordinary daily peak is not reported.
    let spike = stdout
        .lines()
        .skip_while(|l| {
            !l.contains("CRITICAL  dynamic_anomaly http_requests_per_second{service=\"checkout\"}")
        })
        .nth(1)
        .unwrap_or_else(|| panic!("no critical checkout spike in:\n{stdout}"));
    let sigma: f64 = spike
        .split("σ above")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no σ in {spike:?}"));
    assert!(sigma > 5.0, "{spike}");
    let usual: f64 = spike
        .split("its usual ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no usual value in {spike:?}"));
    assert!((usual - 176.6).abs() < 10.0, "{spike}");
    assert!(!stdout.contains("service=\"search\""), "{stdout}");
    // The spike and checkout's two new log shapes are one incident.
    let incident = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("OPEN"))
        .unwrap_or_else(|| panic!("no incident in:\n{stdout}"));
    assert!(
        incident.contains("shop/checkout: http_requests_per_second")
            && incident.contains("its usual, 2 new log shapes")
            && incident.contains("[3 conditions"),
        "{incident}"
    );
}

#[test]
fn demo_serves_the_api_until_sigterm() {
    let port = free_port();
    inspector_runtime::install_crypto_provider();
    let mut child = ServiceProcess::spawn(
        inspector()
            .args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--interval",
                "1s",
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let report: serde_json::Value = loop {
        assert!(Instant::now() < deadline, "demo never served a report");
        match inspector_test_harness::http_get(port, "/v1/report/latest") {
            Ok((200, body)) => break serde_json::from_str(&body).expect("a JSON report"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(report["counts"]["trend_breach"].is_number(), "{report}");
    let (_, body) = inspector_test_harness::http_get(port, "/v1/anomaly-context").unwrap();
    let context: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(context["items"].as_array().unwrap().len(), 6, "{context}");
    // One open incident for shop/checkout: the spike and both log shapes.
    let (status, body) =
        inspector_test_harness::http_get(port, "/v1/incidents?namespace=shop&workload=checkout")
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let incidents: serde_json::Value = serde_json::from_str(&body).unwrap();
    let incidents = incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0]["state"], "open");
    let kinds: Vec<&str> = incidents[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["finding"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["dynamic_anomaly", "log_pattern", "log_pattern"]);
    // The prompt names checkout, the request rate and both templates, and
    // the email queue (another story) comes after checkout's lines.
    let (status, prompt) = inspector_test_harness::http_get(
        port,
        "/v1/anomaly-context?namespace=shop&workload=checkout&format=prompt&max_tokens=400",
    )
    .unwrap();
    assert_eq!(status, 200, "{prompt}");
    for needle in [
        "checkout",
        "http_requests_per_second",
        "java.net.SocketTimeoutException: Read timed out calling payments at <IP>",
        "circuit breaker OPEN for payments after <NUM> consecutive failures",
    ] {
        assert!(prompt.contains(needle), "{needle} missing:\n{prompt}");
    }
    let line_of = |needle: &str| prompt.lines().position(|l| l.contains(needle));
    if let Some(email) = line_of("email_queue_depth{") {
        assert!(line_of("circuit breaker OPEN").unwrap() < email, "{prompt}");
    }
    let (status, body) = inspector_test_harness::http_get(port, "/v1/reports?limit=2").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .is_array()
    );
    // Every sensor keeps passing (the baseline detector used to pass once,
    // and read as stale two of its intervals later): its last run moves on
    // and none is stale.
    let last_run = |report: &serde_json::Value| {
        report["sensors"]
            .as_array()
            .expect("sensors in the report")
            .iter()
            .find(|s| s["sensor"] == "baseline-detector")
            .map(|s| s["last_run_at"].to_string())
    };
    let first_run = last_run(&report).expect("the baseline detector in the report");
    std::thread::sleep(Duration::from_millis(3_500));
    let (_, body) = inspector_test_harness::http_get(port, "/v1/report/latest").unwrap();
    let later: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_ne!(last_run(&later), Some(first_run), "{later}");
    let sensors = later["sensors"].as_array().unwrap();
    assert!(sensors.iter().all(|s| s["stale"] == false), "{later}");

    let status = child.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}
