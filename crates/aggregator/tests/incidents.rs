//! Incidents, history and the scoped context against real nats-server and
//! redis-server: a checkout request-rate spike and checkout's two new log
//! shapes become one incident; the incident and the reports are kept in
//! JetStream across a restart and read by a second aggregator; the context
//! answers over HTTP (JSON, prompt) and over the NATS service, whose
//! `$SRV.PING` answers.

mod common;

use std::time::Duration;

use common::{Aggregator, Env};
use inspector_domain::context::{ContextQuery, ContextReply};
use inspector_domain::wire::WireMessage;
use inspector_domain::{Finding, Incident, ScopeMatch};

use inspector_domain::fixtures::labelled;

fn checkout_story() -> Vec<Finding> {
    let now = chrono::Utc::now();
    let spike = labelled(
        inspector_domain::fixtures::anomaly("http_requests_per_second", "baseline-0", now),
        &[("service", "checkout")],
    );
    let logs = ["payment timeout after <*> ms", "circuit breaker <*> open"]
        .iter()
        .enumerate()
        .map(|(i, template)| {
            let mut log = inspector_domain::fixtures::log_pattern("checkout", template, now);
            log.key = format!("checkout#{i}");
            labelled(
                log,
                &[
                    ("namespace", "shop"),
                    ("workload", "checkout"),
                    ("pod", "checkout-7f9c6d8b4-x9k2p"),
                ],
            )
        });
    let email = labelled(
        common::finding("email_queue_depth", &[]),
        &[("namespace", "shop"), ("deployment", "email")],
    );
    std::iter::once(spike).chain(logs).chain([email]).collect()
}

async fn serve_api(aggregator: &Aggregator) -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(inspector_runtime::serve_http(
        listener,
        aggregator.running.handle.api_router(),
        stop.clone(),
    ));
    (base, stop)
}

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Waits until `check` holds of the incidents listed over HTTP.
async fn incidents_until(
    base: &str,
    query: &str,
    check: impl Fn(&[Incident]) -> bool,
) -> Vec<Incident> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, json) = get_json(&format!("{base}/v1/incidents{query}")).await;
        assert_eq!(status, 200, "{json}");
        let incidents: Vec<Incident> = serde_json::from_value(json).unwrap();
        if check(&incidents) {
            return incidents;
        }
        assert!(tokio::time::Instant::now() < deadline, "{incidents:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_incident_per_story_kept_across_a_restart_and_served_scoped() {
    let env = Env::start();
    let aggregator = Aggregator::start(env.config(), "agg-0").await;
    let bus = env.bus().await;
    let story = checkout_story();
    for finding in &story {
        bus.publish_finding(finding).await.unwrap();
    }
    aggregator.wait_processed(story.len() as u64).await;
    let report = aggregator.report_now().await;
    assert_eq!(report.incidents.len(), 2, "{:#?}", report.incidents);
    let (base, stop) = serve_api(&aggregator).await;

    let checkout =
        incidents_until(&base, "?namespace=shop&workload=checkout", |i| i.len() == 1).await;
    let checkout = &checkout[0];
    assert!(checkout.is_open());
    assert_eq!(checkout.members.len(), 3, "{checkout:#?}");
    let ids: Vec<&str> = checkout.finding_ids().collect();
    for finding in &story[..3] {
        assert!(ids.contains(&finding.id.as_str()));
    }
    assert!(
        checkout
            .title
            .starts_with("shop/checkout: http_requests_per_second 10× its usual, 2 new log shapes"),
        "{}",
        checkout.title
    );
    // Alerts name the incident.
    let alert = report
        .alerts
        .iter()
        .find(|a| a.finding.id == story[0].id)
        .unwrap();
    assert_eq!(alert.incident_id.as_deref(), Some(checkout.id.as_str()));

    // The scoped context: checkout's three first, the email queue below.
    let (status, context) = get_json(&format!(
        "{base}/v1/anomaly-context?namespace=shop&workload=checkout"
    ))
    .await;
    assert_eq!(status, 200);
    let matches: Vec<&str> = context["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["scope_match"].as_str().unwrap())
        .collect();
    assert_eq!(matches, ["workload", "workload", "workload", "namespace"]);
    assert_eq!(context["incidents"][0]["id"], checkout.id.as_str());
    let prompt = reqwest::get(format!(
        "{base}/v1/anomaly-context?namespace=shop&workload=checkout&format=prompt&max_tokens=400"
    ))
    .await
    .unwrap();
    assert!(
        prompt.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let prompt = prompt.text().await.unwrap();
    assert!(inspector_aggregator::context::count_tokens(&prompt) <= 400);
    for needle in [
        "checkout",
        "http_requests_per_second",
        "payment timeout after <*> ms",
        "circuit breaker <*> open",
    ] {
        assert!(prompt.contains(needle), "{needle} missing from:\n{prompt}");
    }
    // A bad parameter names its field.
    let (status, error) = get_json(&format!("{base}/v1/anomaly-context?window=100y")).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("window")),
        "{error}"
    );
    let (status, _) = get_json(&format!("{base}/v1/anomaly-context?nonsense=1")).await;
    assert_eq!(status, 400);

    // Over the NATS service, in protobuf; and the service answers $SRV.PING.
    let client = env.nats_client().await;
    let query = ContextQuery {
        namespace: Some("shop".into()),
        workload: Some("checkout".into()),
        ..Default::default()
    };
    let reply = client
        .request(
            format!("{}.query.context", env.prefix),
            query.to_bytes().into(),
        )
        .await
        .unwrap();
    let ContextReply::Context(context) = ContextReply::from_bytes(&reply.payload).unwrap() else {
        panic!("refused");
    };
    assert_eq!(context.version, 2);
    assert_eq!(context.items.len(), 4);
    assert_eq!(context.items[0].scope_match, ScopeMatch::Workload);
    // A refused query says why.
    let bad = ContextQuery {
        window_seconds: Some(365 * 86_400),
        ..Default::default()
    };
    let reply = client
        .request(
            format!("{}.query.context", env.prefix),
            bad.to_bytes().into(),
        )
        .await
        .unwrap();
    match ContextReply::from_bytes(&reply.payload).unwrap() {
        ContextReply::Refused(error) => assert!(error.starts_with("window:"), "{error}"),
        other => panic!("{other:?}"),
    }
    let ping = client
        .request(
            format!(
                "$SRV.PING.{}",
                inspector_aggregator::responders::SERVICE_NAME
            ),
            "".into(),
        )
        .await
        .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["name"], inspector_aggregator::responders::SERVICE_NAME);

    // Restart: the open incident and the reports come back from JetStream.
    stop.cancel();
    aggregator.stop().await;
    let restarted = Aggregator::start(env.config(), "agg-1").await;
    let (base, stop) = serve_api(&restarted).await;
    let open = incidents_until(&base, "?state=open", |i| i.len() == 2).await;
    assert!(open.iter().any(|i| i.id == checkout.id));
    let (status, reports) = get_json(&format!("{base}/v1/reports?limit=2")).await;
    assert_eq!(status, 200);
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2, "the requested and the shutdown report");
    assert!(
        reports
            .iter()
            .any(|r| r["incidents"].as_array().is_some_and(|i| i.len() == 2))
    );
    // A new sighting of checkout joins the restored incident.
    let again = labelled(
        inspector_domain::fixtures::anomaly(
            "http_requests_per_second",
            "baseline-0",
            chrono::Utc::now(),
        ),
        &[("service", "checkout")],
    );
    bus.publish_finding(&again).await.unwrap();
    restarted.wait_processed(1).await;
    let report = restarted.report_now().await;
    let alert = report
        .alerts
        .iter()
        .find(|a| a.finding.id == again.id)
        .unwrap();
    assert_eq!(alert.incident_id.as_deref(), Some(checkout.id.as_str()));
    let (status, error) = get_json(&format!("{base}/v1/reports?limit=0")).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("limit")));
    stop.cancel();
    restarted.stop().await;
}

/// Why the Python consumer cannot run here, if it cannot.
fn python_missing() -> Option<String> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import nats, google.protobuf, grpc_tools"])
        .output();
    match probe {
        Err(error) => Some(format!("python3 is not installed ({error})")),
        Ok(out) if !out.status.success() => Some(format!(
            "python3 lacks the example's modules (pip install -r examples/python/requirements.txt): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// A consumer not written in Rust: the Python example asks the context of
/// shop/checkout over NATS (generated protobuf) and prints one incident
/// holding the spike and both log shapes.
#[tokio::test]
async fn a_python_consumer_reads_the_checkout_incident_over_nats() {
    if let Some(reason) = python_missing() {
        // Skipped with its reason (scripts/test.sh installs the modules).
        eprintln!("SKIPPED a_python_consumer_reads_the_checkout_incident_over_nats: {reason}");
        return;
    }
    let env = Env::start();
    let aggregator = Aggregator::start(env.config(), "agg-0").await;
    let bus = env.bus().await;
    let story = checkout_story();
    for finding in &story {
        bus.publish_finding(finding).await.unwrap();
    }
    aggregator.wait_processed(story.len() as u64).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/python/context_prompt.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--nats", &env.nats.url(), "--prefix", &env.prefix])
        .args(["--namespace", "shop", "--workload", "checkout"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("Incident "));
    let heading = lines.next().unwrap_or_default();
    assert!(
        heading.contains("shop/checkout: http_requests_per_second"),
        "{stdout}"
    );
    let members = lines
        .take_while(|l| l.starts_with("  - "))
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "critical dynamic_anomaly: http_requests_per_second{service=\"checkout\"}",
        "new log shape \"payment timeout after <*> ms\"",
        "new log shape \"circuit breaker <*> open\"",
    ] {
        assert!(
            members.contains(needle),
            "{needle} not under the incident:\n{stdout}"
        );
    }
    assert!(!members.contains("email_queue_depth"), "{stdout}");
    aggregator.stop().await;
}
