//! The client against a real Prometheus with backfilled history.

use std::time::Duration;

use chrono::{DateTime, Utc};
use inspector_prometheus::{PrometheusClient, PrometheusConfig, PrometheusError};
use inspector_test_harness::{OpenMetrics, PrometheusServer};

/// Two series of `ramp`, one sample a minute for two hours ending `end`.
fn backfilled(end: i64) -> PrometheusServer {
    let samples = |offset: f64| -> Vec<(i64, f64)> {
        (0..=120)
            .map(|i| (end - 7200 + i * 60, offset + i as f64))
            .collect()
    };
    let text = OpenMetrics::new()
        .gauge(
            "ramp",
            &[
                (&[("host", "a")], samples(0.0)),
                (&[("host", "b")], samples(1000.0)),
            ],
        )
        .finish();
    PrometheusServer::start_with_openmetrics(&text)
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn range_query_returns_every_series_and_chunks_transparently() {
    install_crypto();
    let end = Utc::now().timestamp() / 60 * 60 - 3600;
    let prometheus = backfilled(end);
    let client = PrometheusClient::new(PrometheusConfig::new(prometheus.url())).unwrap();
    let whole = client
        .query_range("ramp", at(end - 7200), at(end), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(whole.len(), 2);
    assert_eq!(whole[0].labels["host"], "a");
    assert_eq!(whole[0].samples.len(), 121);
    assert_eq!(whole[0].samples[0].t_ms, (end - 7200) * 1000);
    assert_eq!(whole[0].samples[120].value, 120.0);
    assert_eq!(whole[1].samples[0].value, 1000.0);

    // Seven points per request: 121 points take 21 requests and must stitch
    // into exactly the same series.
    let mut config = PrometheusConfig::new(prometheus.url());
    config.max_points_per_request = 7;
    let chunked = PrometheusClient::new(config)
        .unwrap()
        .query_range("ramp", at(end - 7200), at(end), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(chunked, whole);
}

#[tokio::test]
async fn errors_are_precise() {
    install_crypto();
    let end = Utc::now().timestamp() / 60 * 60 - 3600;
    let prometheus = backfilled(end);
    let client = PrometheusClient::new(PrometheusConfig::new(prometheus.url())).unwrap();

    let err = client.query("sum(ramp", at(end)).await.unwrap_err();
    match &err {
        PrometheusError::Query {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected a query error, got {other:?}"),
    }

    let inf = client.query("1/0", at(end)).await.unwrap();
    assert_eq!(inf[0].samples[0].value, f64::INFINITY);
    let nan = client.query("ramp - ramp + (0/0)", at(end)).await.unwrap();
    assert!(nan.iter().all(|s| s.samples[0].value.is_nan()));

    let empty = client.query("does_not_exist", at(end)).await.unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn unreachable_and_silent_servers() {
    install_crypto();
    // Nothing listens on a port we just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        PrometheusClient::new(PrometheusConfig::new(format!("http://127.0.0.1:{port}"))).unwrap();
    let err = client.query("up", Utc::now()).await.unwrap_err();
    assert!(matches!(err, PrometheusError::Transport(_)), "{err:?}");

    // A server that accepts and never answers: the request times out.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = PrometheusConfig::new(format!("http://{}", silent.local_addr().unwrap()));
    config.timeout = Duration::from_millis(300);
    let err = PrometheusClient::new(config)
        .unwrap()
        .query("up", Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, PrometheusError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("300ms"), "{err}");
}

/// Issue 10, case 7: an answer larger than `max_response_bytes` is an error
/// read no further than the limit, whether the server says its length or
/// streams it.
#[tokio::test]
async fn an_oversized_answer_is_an_error() {
    use std::io::{Read, Write};
    install_crypto();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { break };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = format!(
                "{{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":[{}]}}}}",
                vec!["{\"metric\":{},\"value\":[1,\"1\"]}"; 100_000].join(",")
            );
            // First answer with a length, then chunked without one.
            let head = if i % 2 == 0 {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                    .to_string()
            };
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    let mut config = PrometheusConfig::new(format!("http://127.0.0.1:{port}"));
    config.max_response_bytes = 1 << 20;
    let client = PrometheusClient::new(config).unwrap();
    for _ in 0..2 {
        let error = client.query("up", Utc::now()).await.unwrap_err();
        assert!(error.to_string().contains("max_response_bytes"), "{error}");
    }
}
