//! The sensor and the NAB replay run one policy: the detector, driven over
//! a recorded series through a `MetricSource` (retrains when the policy
//! says, a pass every step), reports exactly the rows the replay
//! (`StreamingDetector`) reports, with the same σ and severity. The same
//! recorded source also drives the sensor at production's cadence (a pass
//! a minute) and through values near f64::MAX.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inspector_baseline::{Severity, StreamingDetector};
use inspector_baseline_detector::{BaselineDetectorConfig, Detector};
use inspector_prometheus::{MetricSource, PrometheusError, Sample, Series};

const STEP_MS: i64 = 300_000;
const HOUR_MS: i64 = 3_600_000;

/// One recorded series, one row every `step_ms`, served as Prometheus
/// would: a range query gets the rows on its grid, an instant query the row
/// at its time.
struct Recorded {
    values: Vec<f64>,
    step_ms: i64,
}

impl Recorded {
    fn series(&self, rows: impl Iterator<Item = i64>) -> Vec<Series> {
        let samples = rows
            .filter_map(|row| {
                let value = *self.values.get(usize::try_from(row).ok()?)?;
                value.is_finite().then_some(Sample {
                    t_ms: row * self.step_ms,
                    value,
                })
            })
            .collect();
        let labels = BTreeMap::from([("__name__".to_string(), "m".to_string())]);
        vec![Series { labels, samples }]
    }
}

impl MetricSource for Recorded {
    async fn query_range(
        &self,
        _query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let first = start.timestamp_millis().div_euclid(self.step_ms);
        let last = end.timestamp_millis().div_euclid(self.step_ms);
        Ok(self.series(first.max(0)..=last))
    }

    async fn query(
        &self,
        _query: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<Series>, PrometheusError> {
        Ok(self.series(std::iter::once(
            time.timestamp_millis().div_euclid(self.step_ms),
        )))
    }
}

/// Twelve days at 5 minutes: a daily cycle with noise, a gap, a spike on
/// day 9, a level shift on day 10 and a dip on day 11.
fn recorded() -> Vec<f64> {
    let mut values: Vec<f64> = inspector_baseline::synthetic::series(3, 12 * 288);
    for value in &mut values[5 * 288 + 40..5 * 288 + 70] {
        *value = f64::NAN;
    }
    values[9 * 288 + 100] += 80.0;
    for value in &mut values[10 * 288 + 50..] {
        *value += 45.0;
    }
    values[11 * 288 + 200] -= 150.0;
    values
}

#[tokio::test]
async fn the_sensor_reports_what_the_replay_reports() {
    let values = recorded();
    let (reported, texts) = sensor_and_replay(&values).await;
    // The series has something to find: the spike, the shift, the dip.
    assert!(reported.len() >= 2, "{reported:?}");
    assert!(
        texts.iter().all(|t| t.contains(" for this time of day (")),
        "{texts:?}"
    );
}

/// Twenty-five days of business traffic (weekends lower), so refits from
/// day 21 on (three weeks of history) choose a weekly season; day 22, a
/// weekday, runs at the weekend's level (a holiday).
#[tokio::test]
async fn with_a_weekly_season_too() {
    let mut values = inspector_baseline::synthetic::business(3, 25 * 288);
    let holiday = 22 * 288;
    for value in &mut values[holiday..holiday + 288] {
        *value -= 30.0;
    }
    let (reported, texts) = sensor_and_replay(&values).await;
    let on_holiday = reported
        .iter()
        .position(|(row, _, _)| (holiday as i64..holiday as i64 + 288).contains(row))
        .unwrap_or_else(|| panic!("{reported:?}"));
    // Judged by a weekly baseline, and the finding says so.
    assert!(
        texts[on_holiday].contains(" below its usual ")
            && texts[on_holiday].contains(" for this time of the week ("),
        "{}",
        texts[on_holiday]
    );
}

/// Four weeks of business traffic, then weekends stop. By day 34 the last
/// two weeks no longer show a significant weekly advantage (t about 0.5),
/// but some is left: a series that is weekly stays weekly until it is gone
/// (t ≤ 0, day 35). The sensor must carry each series' season from one
/// retrain to the next as the replay does: a spike on day 34 is judged by
/// the weekly baseline the series still has.
#[tokio::test]
async fn a_weekly_season_is_kept_across_retrains() {
    let mut values = inspector_baseline::synthetic::series(3, 35 * 288);
    for (i, value) in values[..28 * 288].iter_mut().enumerate() {
        if (i / 288) % 7 >= 5 {
            *value -= 30.0;
        }
    }
    // Evening, after the cooldown of the report that Sunday morning.
    let spike = 34 * 288 + 240;
    values[spike] += 80.0;
    let (reported, texts) = sensor_and_replay(&values).await;
    let at = reported
        .iter()
        .position(|(row, _, _)| *row == spike as i64)
        .unwrap_or_else(|| panic!("{reported:?}"));
    assert!(
        texts[at].contains(" for this time of the week ("),
        "{}",
        texts[at]
    );
}

/// Twelve days sampled hourly (an hour holds one sample): a +40 spike on
/// day 3, then a step of +20 for good on day 9, smaller than the spike.
/// Both judge the hour-median evidence over three samples (three hours),
/// and the sensor's finding says so.
#[tokio::test]
async fn an_hourly_series_is_judged_over_three_samples_in_both() {
    let mut values = inspector_baseline::synthetic::hourly(3, 12);
    values[3 * 24 + 8] += 40.0;
    let step_at = 9 * 24 + 5;
    for value in &mut values[step_at..] {
        *value += 20.0;
    }
    let (reported, texts) = sensor_and_replay_at(&values, HOUR_MS).await;
    let at = reported
        .iter()
        .position(|(row, _, _)| *row >= step_at as i64)
        .unwrap_or_else(|| panic!("{reported:?}"));
    assert!(
        texts[at].contains("level-shift detector: level shifted by +")
            && texts[at].contains(" over the last 3 hours "),
        "{}",
        texts[at]
    );
}

/// Ten days that have seen ±15 spikes and an hour 12 off, then three hours
/// flapping +6, −6, 0 on day 9 (from the row returned).
fn flapping() -> (Vec<f64>, usize) {
    let mut values = inspector_baseline::synthetic::seasoned(3, 10);
    let flap_at = 9 * 288 + 60;
    inspector_baseline::synthetic::flap(&mut values, flap_at, 36);
    (values, flap_at)
}

/// [`flapping`]: both find it by the variance evidence.
#[tokio::test]
async fn flapping_is_found_by_its_changes_in_both() {
    let (values, flap_at) = flapping();
    let (reported, texts) = sensor_and_replay(&values).await;
    let at = reported
        .iter()
        .position(|(row, _, _)| *row >= flap_at as i64)
        .unwrap_or_else(|| panic!("{reported:?}"));
    assert!(reported[at].0 < flap_at as i64 + 12, "{reported:?}");
    assert!(
        texts[at].contains("variance detector: values moved a median ")
            && texts[at].contains(" from one sample to the next over the last 1 hour, "),
        "{}",
        texts[at]
    );
}

/// The same flapping at production's cadence: a pass every minute at a
/// 5-minute step (the shipped config), so the sensor judges each row five
/// times. Its changes are taken a step apart, as the training history's
/// are, and it finds the flapping as the replay does, within the hour.
#[tokio::test]
async fn flapping_is_found_with_a_pass_every_minute() {
    let (values, flap_at) = flapping();
    // The shipped step, which `recorded_detector` states.
    let yaml = "prometheus: { url: http://127.0.0.1:9 }\nmetrics: [{ name: m, query: m }]\n";
    let shipped: BaselineDetectorConfig = inspector_runtime::load_config_from_str(yaml).unwrap();
    assert_eq!(shipped.step_ms(), STEP_MS);
    let (detector, policy) = recorded_detector(&values, STEP_MS);
    let passes = (0..values.len() as i64 * 5).map(|pass| pass * 60_000);
    let found: Vec<(i64, String)> = run_passes(&detector, &policy, passes)
        .await
        .into_iter()
        .map(|(now_ms, finding)| (now_ms / STEP_MS, finding.description.clone()))
        .collect();
    let day9: Vec<_> = found.iter().filter(|(row, _)| *row >= 9 * 288).collect();
    let (row, text) = day9.first().unwrap_or_else(|| panic!("{found:?}"));
    assert!(
        (flap_at as i64..flap_at as i64 + 12).contains(row),
        "{found:?}"
    );
    assert!(
        text.contains("variance detector: values moved a median "),
        "{text}"
    );
}

/// Values near f64::MAX, as Prometheus may return them: a series swinging
/// between ±f64::MAX gets no baseline and says why in the pass's errors; an
/// ordinary series reaching f64::MAX once is reported with a σ that is a
/// number (it saturates), which the wire format accepts.
#[tokio::test]
async fn values_near_the_largest_float_are_an_error_or_a_finite_sigma() {
    let detector = |values: Vec<f64>| recorded_detector(&values, STEP_MS).0;
    let at = |row: i64| DateTime::from_timestamp_millis(row * STEP_MS).unwrap();
    let swinging: Vec<f64> = (0..4 * 288)
        .map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX })
        .collect();
    let sensor = detector(swinging);
    sensor.retrain(at(3 * 288)).await;
    let outcome = sensor.detect(at(3 * 288)).await;
    assert!(outcome.findings.is_empty(), "{:?}", outcome.findings);
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.message.contains("values too large to model")),
        "{:?}",
        outcome.errors
    );

    let mut once = inspector_baseline::synthetic::series(3, 4 * 288);
    let row = 3 * 288 + 7;
    once[row] = f64::MAX;
    let sensor = detector(once);
    sensor.retrain(at(row as i64)).await;
    let outcome = sensor.detect(at(row as i64)).await;
    let [finding] = outcome.findings.as_slice() else {
        panic!("{outcome:?}");
    };
    assert_eq!(finding.anomaly().unwrap().deviation_sigma, f64::MAX);
    use inspector_domain::wire::WireMessage;
    let decoded =
        inspector_domain::Finding::from_bytes(&finding.to_bytes()).expect("the wire accepts it");
    assert_eq!(decoded.anomaly().unwrap().deviation_sigma, f64::MAX);
}

/// The rows (with σ and severity) the sensor reports over `values`, checked
/// equal to the replay's, and the sensor's findings' texts.
async fn sensor_and_replay(
    values: &[f64],
) -> (Vec<(i64, f64, inspector_domain::Severity)>, Vec<String>) {
    sensor_and_replay_at(values, STEP_MS).await
}

/// The detector (shipped defaults but for `step_ms`) over `values`, one
/// row every `step_ms`, and the policy it runs.
fn recorded_detector(
    values: &[f64],
    step_ms: i64,
) -> (Detector<Recorded>, inspector_baseline::Policy) {
    let yaml = format!(
        "prometheus: {{ url: http://127.0.0.1:9 }}\nstep: {}s\nmetrics: [{{ name: m, query: m }}]\n",
        step_ms / 1000
    );
    let config: BaselineDetectorConfig = inspector_runtime::load_config_from_str(&yaml).unwrap();
    config.validate().unwrap();
    let policy = config.policy();
    let detector = Detector::new(
        config,
        Recorded {
            values: values.to_vec(),
            step_ms,
        },
        inspector_membership::Membership::fixed(Default::default()),
        "test".into(),
    );
    (detector, policy)
}

/// A detection pass at each of `passes` (ms), with a retrain first whenever
/// the policy says one is due: the findings, with their pass's time.
async fn run_passes(
    detector: &Detector<Recorded>,
    policy: &inspector_baseline::Policy,
    passes: impl Iterator<Item = i64>,
) -> Vec<(i64, inspector_domain::Finding)> {
    let mut found = Vec::new();
    let mut last_refit = None;
    for now_ms in passes {
        let now = DateTime::from_timestamp_millis(now_ms).unwrap();
        if policy.refit_due(last_refit, now_ms) {
            last_refit = Some(now_ms);
            detector.retrain(now).await;
        }
        for finding in detector.detect(now).await.findings {
            found.push((now_ms, finding));
        }
    }
    found
}

/// [`sensor_and_replay`] for a series with a row every `step_ms`.
async fn sensor_and_replay_at(
    values: &[f64],
    step_ms: i64,
) -> (Vec<(i64, f64, inspector_domain::Severity)>, Vec<String>) {
    let (detector, policy) = recorded_detector(values, step_ms);
    let passes = (0..values.len() as i64).map(|row| row * step_ms);
    let mut sensor = Vec::new();
    let mut texts = Vec::new();
    for (now_ms, finding) in run_passes(&detector, &policy, passes).await {
        let sigma = finding
            .anomaly()
            .expect("a dynamic anomaly")
            .deviation_sigma;
        sensor.push((now_ms / step_ms, sigma, finding.severity));
        texts.push(finding.description.clone());
    }
    let mut replay = StreamingDetector::new(policy, step_ms);
    let replayed: Vec<_> = values
        .iter()
        .enumerate()
        .filter_map(|(row, value)| {
            let verdict = replay.observe(*value)?;
            verdict.reported.then(|| {
                let severity = match verdict.severity? {
                    Severity::Critical => inspector_domain::Severity::Critical,
                    Severity::Warning => inspector_domain::Severity::Warning,
                };
                Some((row as i64, verdict.assessment.sigma, severity))
            })?
        })
        .collect();
    assert_eq!(sensor, replayed);
    (sensor, texts)
}
