//! Training and detection: one baseline per returned series (labels kept),
//! refit in the background, judged against the instant value each pass.
//! One metric's failure is an error in the pass, never a stop.

use inspector_membership::Membership;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use inspector_baseline::{
    Baseline, BaselineError, Policy, Season, SeriesJudge, Severity as BaselineSeverity,
};
use inspector_domain::{
    AnomalyDetail, BandPoint, Finding, FindingDetail, MAX_EVIDENCE_POINTS, Observation,
    SensorError, Severity, latest_points,
};
use inspector_prometheus::{MetricSource, PrometheusClient, Series, SeriesSink};
use tokio::sync::RwLock;

use crate::config::{BaselineDetectorConfig, WatchedMetric};

/// Name of this sensor in findings, run summaries and subjects.
pub const SENSOR: &str = "baseline-detector";

type Labels = BTreeMap<String, String>;
/// A series: metric name and labels.
type SeriesKey = (String, Labels);

#[derive(Debug, Clone)]
struct Trained {
    baseline: Baseline,
    /// Time of the last training sample.
    until_ms: i64,
}

/// Baselines of every owned series, shared by the retrain and detect loops.
#[derive(Debug, Default)]
pub struct Models {
    by_series: HashMap<SeriesKey, Trained>,
    /// Training errors of the latest retrain, reported with the next run.
    errors: Vec<SensorError>,
}

/// What a pass produced.
#[derive(Debug, Default)]
pub struct PassOutcome {
    pub findings: Vec<Finding>,
    pub errors: Vec<SensorError>,
    pub series_judged: usize,
    /// Series seen now with no baseline yet (before their first fit): not
    /// an error, they are warming up.
    pub warming_up: u32,
}

fn without_name(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The training grid: `count` points, `step_ms` apart, from `start_ms`.
#[derive(Debug, Clone, Copy)]
struct Grid {
    start_ms: i64,
    step_ms: i64,
    count: usize,
}

/// Fits each series of one rule's training answer as it is decoded.
struct Fitter {
    grid: Grid,
    policy: Policy,
    /// This metric's series whose current model is weekly: a refit keeps
    /// the weekly season until the evidence for it is gone.
    weekly: Arc<HashSet<Labels>>,
    until_ms: i64,
    fitted: Vec<(Labels, Trained)>,
    /// "labels: no baseline: why", per series that could not be fitted.
    failed: Vec<String>,
    /// Series with too little history yet.
    young: usize,
}

impl SeriesSink for Fitter {
    fn accept(&mut self, series: Series) {
        let labels = without_name(&series.labels);
        let Grid {
            start_ms,
            step_ms,
            count,
        } = self.grid;
        let values = regular_values(&series, start_ms, step_ms, count);
        let previous = self.weekly.contains(&labels).then_some(Season::Weekly);
        match self.policy.fit(&values, step_ms, previous) {
            Ok(baseline) => self.fitted.push((
                labels,
                Trained {
                    baseline,
                    until_ms: self.until_ms,
                },
            )),
            // Younger than two seasons: it is warming up (counted when a pass
            // sees it without a model), not failing.
            Err(BaselineError::InsufficientHistory { .. }) => self.young += 1,
            Err(e) => self.failed.push(format!("{labels:?}: no baseline: {e}")),
        }
    }
}

/// Values of `series` on the regular grid `start + i·step` (NaN where missing).
pub fn regular_values(series: &Series, start_ms: i64, step_ms: i64, count: usize) -> Vec<f64> {
    let mut values = vec![f64::NAN; count];
    for sample in &series.samples {
        let offset = sample.t_ms.saturating_sub(start_ms);
        if offset >= 0 && offset % step_ms == 0 {
            let index = (offset / step_ms) as usize;
            if index < count {
                values[index] = sample.value;
            }
        }
    }
    values
}

/// The detector: config, where metrics come from (Prometheus, or the demo's
/// scenario), the shared models and each series' judge (its cooldown), all
/// under the policy `inspector_baseline::Policy` defines once. Clones share
/// all state, so the retrain loop and the detection loop each hold one.
#[derive(Debug)]
pub struct Detector<S = PrometheusClient> {
    config: BaselineDetectorConfig,
    source: Arc<S>,
    models: Arc<RwLock<Models>>,
    judges: Arc<RwLock<HashMap<SeriesKey, SeriesJudge>>>,
    membership: Membership,
    instance: String,
}

impl<S> Clone for Detector<S> {
    fn clone(&self) -> Self {
        Detector {
            config: self.config.clone(),
            source: Arc::clone(&self.source),
            models: Arc::clone(&self.models),
            judges: Arc::clone(&self.judges),
            membership: self.membership.clone(),
            instance: self.instance.clone(),
        }
    }
}

impl<S: MetricSource> Detector<S> {
    pub fn new(
        config: BaselineDetectorConfig,
        source: S,
        membership: Membership,
        instance: String,
    ) -> Self {
        Detector {
            config,
            source: Arc::new(source),
            models: Arc::default(),
            judges: Arc::default(),
            membership,
            instance,
        }
    }

    pub fn config(&self) -> &BaselineDetectorConfig {
        &self.config
    }

    fn owned(&self) -> Vec<WatchedMetric> {
        self.config
            .metrics
            .iter()
            .filter(|m| self.membership.owns(&m.name))
            .cloned()
            .collect()
    }

    /// Refits every owned series on the policy's training window before
    /// `now`. Detection keeps using the previous baselines until this
    /// finishes.
    pub async fn retrain(&self, now: DateTime<Utc>) -> usize {
        let window = self
            .config
            .policy()
            .training_window(now.timestamp_millis(), self.config.step_ms());
        let (start_ms, end_ms, step_ms, count) =
            (window.start_ms, window.end_ms, window.step_ms, window.count);
        let (start, end) = (
            DateTime::from_timestamp_millis(start_ms).unwrap_or(now),
            DateTime::from_timestamp_millis(end_ms).unwrap_or(now),
        );
        let policy = self.config.policy();
        // The series whose models are weekly now, per metric (read once,
        // the lock released before any query).
        let weekly: HashMap<String, Arc<HashSet<Labels>>> = {
            let models = self.models.read().await;
            let mut by_metric: HashMap<String, HashSet<Labels>> = HashMap::new();
            for ((name, labels), trained) in &models.by_series {
                if Policy::season(&trained.baseline, step_ms) == Season::Weekly {
                    by_metric
                        .entry(name.clone())
                        .or_default()
                        .insert(labels.clone());
                }
            }
            by_metric
                .into_iter()
                .map(|(name, labels)| (name, Arc::new(labels)))
                .collect()
        };
        let weekly = &weekly;
        // Each rule's answer is decoded and fitted series by series as it
        // arrives, on a blocking thread: memory is the models plus one
        // series, not the answer.
        let results: Vec<(WatchedMetric, _)> = futures::stream::iter(self.owned())
            .map(|metric| async move {
                let fitter = Fitter {
                    grid: Grid {
                        start_ms,
                        step_ms,
                        count,
                    },
                    policy,
                    weekly: weekly.get(&metric.name).cloned().unwrap_or_default(),
                    until_ms: end_ms,
                    fitted: Vec::new(),
                    failed: Vec::new(),
                    young: 0,
                };
                let result = self
                    .source
                    .query_range_each(&metric.query, start, end, self.config.step, fitter)
                    .await;
                (metric, result)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let mut trained = HashMap::new();
        let mut errors = Vec::new();
        for (metric, result) in results {
            let error = |message: String| SensorError {
                subject: metric.name.clone(),
                message,
            };
            match result {
                Ok(fitter)
                    if fitter.fitted.is_empty()
                        && fitter.failed.is_empty()
                        && fitter.young == 0 =>
                {
                    errors.push(error(format!(
                        "training query {:?} returned no series",
                        metric.query
                    )))
                }
                Ok(fitter) => {
                    for (labels, model) in fitter.fitted {
                        trained.insert((metric.name.clone(), labels), model);
                    }
                    errors.extend(fitter.failed.into_iter().map(error));
                }
                Err(e) => errors.push(error(format!("training: {e}"))),
            }
        }
        let fitted = trained.len();
        let mut models = self.models.write().await;
        // A metric whose query failed keeps its previous baselines.
        for ((name, labels), model) in trained {
            models.by_series.insert((name, labels), model);
        }
        models.errors = errors;
        fitted
    }

    /// Judges every owned series' current value.
    pub async fn detect(&self, now: DateTime<Utc>) -> PassOutcome {
        let results: Vec<(WatchedMetric, _)> = futures::stream::iter(self.owned())
            .map(|metric| async move {
                let result = self.source.query(&metric.query, now).await;
                (metric, result)
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let policy = self.config.policy();
        let step_ms = self.config.step_ms();
        let now_ms = now.timestamp_millis();
        let mut outcome = PassOutcome::default();
        let models = self.models.read().await;
        outcome.errors.extend(models.errors.iter().cloned());
        let mut judges = self.judges.write().await;
        for (metric, result) in results {
            let error = |message: String| SensorError {
                subject: metric.name.clone(),
                message,
            };
            let series = match result {
                Ok(series) if series.is_empty() => {
                    outcome.errors.push(error(format!(
                        "query {:?} returned no series",
                        metric.query
                    )));
                    continue;
                }
                Ok(series) => series,
                Err(e) => {
                    outcome.errors.push(error(e.to_string()));
                    continue;
                }
            };
            for one in series {
                let labels = without_name(&one.labels);
                let Some(sample) = one.samples.last() else {
                    continue;
                };
                if !sample.value.is_finite() {
                    outcome.errors.push(error(format!(
                        "{labels:?}: current value is {}",
                        sample.value
                    )));
                    continue;
                }
                let key = (metric.name.clone(), labels);
                let Some(model) = models.by_series.get(&key) else {
                    outcome.warming_up += 1;
                    continue;
                };
                outcome.series_judged += 1;
                // Judged at the pass's time: the instant query's sample is
                // the value now, and the cooldown runs on the pass's clock.
                let verdict = judges.entry(key.clone()).or_default().judge(
                    &policy,
                    &model.baseline,
                    model.until_ms,
                    step_ms,
                    sample.value,
                    now_ms,
                );
                let assessment = verdict.assessment;
                let (true, Some(severity)) = (verdict.reported, verdict.severity) else {
                    continue;
                };
                // A weekly baseline knows the day of the week too.
                let season = match Policy::season(&model.baseline, step_ms) {
                    Season::Weekly => "time of the week",
                    Season::Daily => "time of day",
                };
                let direction = if assessment.sigma > 0.0 {
                    "above"
                } else {
                    "below"
                };
                let what = if metric.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", metric.description)
                };
                outcome.findings.push(
                    Finding::dynamic_anomaly(
                        Observation {
                            key: metric.name.clone(),
                            labels: key.1.clone(),
                            severity: match severity {
                                BaselineSeverity::Critical => Severity::Critical,
                                BaselineSeverity::Warning => Severity::Warning,
                            },
                            description: format!(
                                "{}{what} is {:.4}, {:.1}σ {direction} its usual {:.4} ± {:.4} for this \
                                 {season} ({})",
                                metric.name,
                                sample.value,
                                assessment.sigma.abs(),
                                assessment.expected,
                                assessment.std,
                                verdict.reason(policy.memory),
                            ),
                            source: metric.query.clone(),
                            detected_at: now,
                            shadow: self.config.shadow,
                            instance: self.instance.clone(),
                        },
                        AnomalyDetail {
                            current_value: sample.value,
                            expected_mean: assessment.expected,
                            expected_std: assessment.std,
                            deviation_sigma: assessment.sigma,
                            evidence: Vec::new(),
                        },
                    ),
                );
            }
        }
        drop(judges);
        drop(models);
        self.attach_evidence(&mut outcome.findings, now).await;
        outcome.findings.sort_by_key(Finding::dedup_key);
        outcome
    }

    /// Gives each finding its series' latest [`MAX_EVIDENCE_POINTS`] steps
    /// against its model's band: one range query per metric with findings
    /// (findings are rare, so this costs Prometheus little). A query that
    /// fails leaves its findings without evidence; they are still reported.
    async fn attach_evidence(&self, findings: &mut [Finding], now: DateTime<Utc>) {
        if findings.is_empty() {
            return;
        }
        let step = self.config.step;
        let step_ms = self.config.step_ms();
        let span = chrono::Duration::milliseconds(step_ms * (MAX_EVIDENCE_POINTS as i64 - 1));
        let queries: HashSet<&str> = findings.iter().map(|f| f.source.as_str()).collect();
        let answers: HashMap<String, Vec<Series>> = futures::stream::iter(queries)
            .map(|query| async move {
                let answer = self.source.query_range(query, now - span, now, step).await;
                (query, answer)
            })
            .buffer_unordered(self.config.concurrency)
            .filter_map(|(query, answer)| async move {
                match answer {
                    Ok(series) => Some((query.to_string(), series)),
                    Err(error) => {
                        tracing::warn!(
                            error = &error as &dyn std::error::Error,
                            query,
                            "no evidence series for a finding"
                        );
                        None
                    }
                }
            })
            .collect()
            .await;
        let models = self.models.read().await;
        for finding in findings.iter_mut() {
            let Some(series) = answers.get(&finding.source).and_then(|all| {
                all.iter()
                    .find(|s| without_name(&s.labels) == finding.labels)
            }) else {
                continue;
            };
            let Some(model) = models
                .by_series
                .get(&(finding.key.clone(), finding.labels.clone()))
            else {
                continue;
            };
            let points = series
                .samples
                .iter()
                .filter_map(|sample| {
                    let offset = (sample.t_ms - model.until_ms).div_euclid(step_ms.max(1));
                    let point = BandPoint {
                        at: DateTime::from_timestamp_millis(sample.t_ms)?,
                        value: sample.value,
                        expected: model.baseline.expected_at(offset),
                        std: model.baseline.std_at(offset),
                    };
                    [point.value, point.expected, point.std]
                        .iter()
                        .all(|v| v.is_finite())
                        .then_some(point)
                })
                .collect();
            if let FindingDetail::DynamicAnomaly(detail) = &mut finding.detail {
                detail.evidence = latest_points(points);
            }
        }
    }
}
