//! Issue 10, case 7: one rule answering 10,000 series of seven days at
//! 5 minutes (about 440 MB of JSON) is trained within a memory bound. The
//! answer is decoded and fitted series by series on a blocking thread;
//! before, the whole body was held (and refused over
//! `prometheus.max_response_bytes`), one `String` per sample, and every
//! series collected before any was fitted.
//!
//! The stand-in Prometheus writes the answer lazily, series by series, so
//! it holds nothing either; the peak resident memory of this test process
//! (its own binary, one test) is what is measured.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use chrono::{DateTime, Utc};
use inspector_baseline_detector::{BaselineDetectorConfig, Detector};
use inspector_prometheus::PrometheusClient;

const SERIES: usize = 10_000;
const POINTS: i64 = 2_016;
const STEP: i64 = 300;

/// The process's resident and peak resident memory, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .expect("a memory field")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One series of the answer: a daily shape per series, a little noise.
fn series_json(i: usize, end: i64, first: bool) -> String {
    let start = end - (POINTS - 1) * STEP;
    let mut out = String::with_capacity(POINTS as usize * 24 + 64);
    if !first {
        out.push(',');
    }
    out.push_str(&format!(
        r#"{{"metric":{{"__name__":"requests","pod":"pod-{i}"}},"values":["#
    ));
    for k in 0..POINTS {
        let t = start + k * STEP;
        let daily = ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
        let value =
            100.0 + i as f64 % 50.0 + 20.0 * daily + ((k * 7919 + i as i64) % 13) as f64 * 0.1;
        if k > 0 {
            out.push(',');
        }
        out.push_str(&format!(r#"[{t},"{value:.3}"]"#));
    }
    out.push_str("]}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_series_in_one_rule_train_in_bounded_memory() {
    inspector_runtime::install_crypto_provider();
    let now = Utc::now().timestamp() / STEP * STEP;
    let end = now;
    let app = Router::new().route(
        "/api/v1/query_range",
        post(move || async move {
            let head = futures::stream::once(async {
                Ok::<_, Infallible>(
                    r#"{"status":"success","data":{"resultType":"matrix","result":["#.to_string(),
                )
            });
            let body = futures::stream::iter(0..SERIES)
                .map(move |i| Ok::<_, Infallible>(series_json(i, end, i == 0)));
            let tail = futures::stream::once(async { Ok::<_, Infallible>("]}}".to_string()) });
            use futures::StreamExt;
            Body::from_stream(head.chain(body).chain(tail))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let yaml = format!(
        "prometheus: {{url: '{url}', timeout: 300s}}\nmetrics:\n  - {{name: requests, query: requests, description: request rate}}\n"
    );
    let config: BaselineDetectorConfig = inspector_runtime::load_config_from_str(&yaml).unwrap();
    config.validate().unwrap();
    let client = PrometheusClient::new(config.prometheus.clone()).unwrap();
    let detector = Detector::new(
        config,
        client,
        inspector_membership::Membership::fixed(Default::default()),
        "baseline-0".into(),
    );
    let (before, _) = memory();
    let at = DateTime::from_timestamp(now, 0).unwrap();
    let fitted = detector.retrain(at).await;
    let (after, peak) = memory();
    let grown = peak.saturating_sub(before);
    eprintln!(
        "{SERIES} series x {POINTS} points: resident {} MB before, {} MB after, peak {} MB (+{} MB)",
        before >> 20,
        after >> 20,
        peak >> 20,
        grown >> 20
    );
    assert_eq!(fitted, SERIES, "every series fitted");
    assert!(
        grown < 100 << 20,
        "training grew the process by {} MB (bound: 100 MB)",
        grown >> 20
    );
}
