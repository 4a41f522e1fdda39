//! The baseline detector against a real Prometheus with seven days of
//! backfilled 5-minute history: a spike is critical with the right σ, the
//! ordinary daily peak is not reported, a broken metric is an error only;
//! values near f64::MAX are an error or a saturated σ, never a panic.

use chrono::{DateTime, Utc};
use inspector_baseline_detector::{BaselineDetectorConfig, Detector};
use inspector_domain::{FindingKind, Severity};
use inspector_prometheus::PrometheusClient;
use inspector_test_harness::{OpenMetrics, PrometheusServer};

/// Deterministic jitter in [-1, 1].
fn jitter(i: i64) -> f64 {
    let x = (i as f64 * 12.9898).sin() * 43_758.545_3;
    (x - x.floor() - 0.5) * 2.0
}

fn daily(t: i64, peak_at: i64) -> f64 {
    50.0 + 30.0 * ((t - peak_at) as f64 / 86_400.0 * std::f64::consts::TAU).cos()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// The detector (defaults) against `prometheus`, watching `metrics` (YAML
/// list items).
fn detector(prometheus: &PrometheusServer, metrics: &str) -> Detector {
    let yaml = format!(
        "prometheus: {{url: '{}'}}\nmetrics:\n{metrics}",
        prometheus.url()
    );
    let config: BaselineDetectorConfig = inspector_runtime::load_config_from_str(&yaml).unwrap();
    config.validate().unwrap();
    let client = PrometheusClient::new(config.prometheus.clone()).unwrap();
    Detector::new(
        config,
        client,
        inspector_membership::Membership::fixed(Default::default()),
        "baseline-0".into(),
    )
}

#[tokio::test]
async fn spike_is_critical_and_daily_peak_is_quiet() {
    inspector_runtime::install_crypto_provider();
    let t = Utc::now().timestamp() / 300 * 300 - 600;
    let history = |spike: f64| -> Vec<(i64, f64)> {
        let mut samples: Vec<(i64, f64)> = (0..2016)
            .map(|k| {
                let ts = t - 7 * 86_400 + k * 300;
                (ts, daily(ts, t) + jitter(k))
            })
            .collect();
        samples.push((t, daily(t, t) + spike));
        samples
    };
    let text = OpenMetrics::new()
        .gauge(
            "requests",
            &[
                (&[("service", "checkout")], history(15.0)),
                (&[("service", "search")], history(0.3)),
                // Deployed a day ago: too young for a baseline, which is
                // warming up, not an error.
                (
                    &[("service", "fresh")],
                    history(0.0)
                        .into_iter()
                        .filter(|(ts, _)| *ts > t - 86_400)
                        .collect(),
                ),
                // A week old but scraped one hour in four (Prometheus
                // bridges gaps shorter than its 5-minute lookback, not
                // these): no baseline, and that is an error, since it
                // will not grow into one. It has a sample now whatever the
                // hour the test runs in.
                (
                    &[("service", "sparse")],
                    history(0.0)
                        .into_iter()
                        .filter(|(ts, _)| (ts / 3_600) % 4 == 0 || *ts == t)
                        .collect(),
                ),
            ],
        )
        .finish();
    let prometheus = PrometheusServer::start_with_openmetrics(&text);
    let detector = detector(
        &prometheus,
        "  - {name: requests, query: requests, description: request rate}\n  - {name: broken, query: 'rate(requests[', description: typo}\n",
    );

    // Before the first fit every series is warming up, which is no error
    // (issue 12: start-up used to log one "no baseline yet" per series).
    let early = detector.detect(at(t)).await;
    assert_eq!(early.warming_up, 4);
    assert!(
        early.errors.iter().all(|e| !e.message.contains("baseline")),
        "warming up is not an error: {:?}",
        early.errors
    );
    assert!(early.findings.is_empty());

    // Train on the seven days before t, then judge t.
    let fitted = detector.retrain(at(t - 300)).await;
    assert_eq!(fitted, 2, "one baseline per series old enough for one");
    let outcome = detector.detect(at(t)).await;
    assert_eq!(outcome.series_judged, 2);
    assert!(
        outcome.errors.iter().all(|e| !e.message.contains("fresh")),
        "a young series is no error: {:?}",
        outcome.errors
    );
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.message.contains("sparse") && e.message.contains("too sparse")),
        "a sparse series is: {:?}",
        outcome.errors
    );
    assert_eq!(outcome.findings.len(), 1, "{:#?}", outcome.findings);
    let finding = &outcome.findings[0];
    assert_eq!(finding.kind(), FindingKind::DynamicAnomaly);
    let anomaly = finding.anomaly().expect("a dynamic anomaly");
    assert_eq!(finding.labels["service"], "checkout");
    assert_eq!(finding.severity, Severity::Critical);
    let std = anomaly.expected_std;
    let expected = anomaly.expected_mean;
    assert!(
        (expected - 80.0).abs() < 3.0 * std.max(0.5),
        "expected {expected} at the daily peak (80)"
    );
    // Uniform ±1 noise: σ ≈ 0.6–0.8, so +15 is roughly 20σ.
    let sigma = anomaly.deviation_sigma;
    assert!((10.0..40.0).contains(&sigma), "σ {sigma} with std {std}");
    assert!(
        finding.description.contains("above its usual"),
        "{}",
        finding.description
    );
    // Evidence: the series up to now against the band the model drew.
    let evidence = &anomaly.evidence;
    assert!(
        (100..=inspector_domain::MAX_EVIDENCE_POINTS).contains(&evidence.len()),
        "{} points",
        evidence.len()
    );
    assert!(evidence.windows(2).all(|w| w[0].at < w[1].at));
    let last = evidence.last().unwrap();
    assert_eq!(last.at, at(t));
    assert_eq!(last.value, anomaly.current_value);
    assert!((last.expected - expected).abs() < 1e-9 && (last.std - std).abs() < 1e-9);
    // Before the spike the values sit inside the band.
    let inside = evidence[..evidence.len() - 1]
        .iter()
        .filter(|p| (p.value - p.expected).abs() <= 3.0 * p.std)
        .count();
    assert!(
        inside * 10 >= (evidence.len() - 1) * 9,
        "{inside} of {} inside",
        evidence.len() - 1
    );

    // The broken metric is an error of the pass, nothing more.
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.subject == "broken" && e.message.contains("bad_data")),
        "{:?}",
        outcome.errors
    );

    // Cooldown: the same spike a step later is not reported again.
    let again = detector.detect(at(t)).await;
    assert!(again.findings.is_empty());
}

/// Values near f64::MAX, stored in and answered by a real Prometheus: a
/// series swinging between ±f64::MAX gets no baseline, and the pass says
/// why; an ordinary series at f64::MAX now is critical, with a σ that
/// saturates at f64::MAX instead of ∞ (the wire format rejects ∞).
#[tokio::test]
async fn values_near_the_largest_float_are_an_error_or_a_finite_sigma() {
    inspector_runtime::install_crypto_provider();
    let t = Utc::now().timestamp() / 300 * 300 - 600;
    let week = |value: &dyn Fn(i64, i64) -> f64| -> Vec<(i64, f64)> {
        (0..=2016)
            .map(|k| {
                let ts = t - 7 * 86_400 + k * 300;
                (ts, value(k, ts))
            })
            .collect()
    };
    let swinging = week(&|k, _| if k % 2 == 0 { f64::MAX } else { -f64::MAX });
    let mut once = week(&|k, ts| daily(ts, t) + jitter(k));
    once.last_mut().unwrap().1 = f64::MAX;
    let text = OpenMetrics::new()
        .gauge(
            "load",
            &[
                (&[("host", "swinging")], swinging),
                (&[("host", "once")], once),
            ],
        )
        .finish();
    let prometheus = PrometheusServer::start_with_openmetrics(&text);
    let detector = detector(&prometheus, "  - {name: load, query: load}\n");
    assert_eq!(detector.retrain(at(t - 300)).await, 1, "only `once` fits");
    let outcome = detector.detect(at(t)).await;
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.message.contains("swinging")
                && e.message.contains("values too large to model")),
        "{:?}",
        outcome.errors
    );
    let [finding] = outcome.findings.as_slice() else {
        panic!("{outcome:#?}");
    };
    assert_eq!(finding.labels["host"], "once");
    assert_eq!(finding.severity, Severity::Critical);
    assert_eq!(finding.anomaly().unwrap().deviation_sigma, f64::MAX);
}
