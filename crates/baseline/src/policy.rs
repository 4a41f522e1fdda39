//! The per-series judgement the baseline sensor makes and the NAB replay
//! replays, defined once and driven by an injected clock (times in
//! milliseconds): when to refit and on which samples, how far ahead a value
//! is judged, and the cooldown after a report. `inspector-baseline-detector`
//! runs it against Prometheus, [`crate::StreamingDetector`] over a recorded
//! series; a test in the detector proves they give the same verdicts.

use std::time::Duration;

use crate::{Assessment, Baseline, Thresholds};

/// How a series is judged. One definition of every default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub thresholds: Thresholds,
    /// History a baseline is fitted on (at least two days: two seasons).
    pub lookback: Duration,
    /// Time between refits.
    pub refit_every: Duration,
    /// After a report the series reports nothing more for this long.
    pub cooldown: Duration,
}

impl Default for Policy {
    /// Seven days of history, refit hourly, 24 h cooldown per series, 3σ /
    /// 5σ, only deviations larger than any in the history (the cooldown
    /// and history were chosen on NAB with the `settings_sweep` example: a
    /// 6 h cooldown floods it with repeats, 72 h hides later windows).
    fn default() -> Self {
        Policy {
            thresholds: Thresholds::default(),
            lookback: Duration::from_secs(7 * 86_400),
            refit_every: Duration::from_secs(3_600),
            cooldown: Duration::from_secs(24 * 3_600),
        }
    }
}

/// The samples a refit at some time is trained on: `count` points `step_ms`
/// apart, the last at `end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub count: usize,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Policy {
    /// Samples per season (a day) at `step_ms`.
    pub fn period(step_ms: i64) -> usize {
        ((86_400_000 / step_ms.max(1)) as usize).max(2)
    }

    /// The window a refit at `now_ms` trains on: the `lookback` up to the
    /// last step strictly before `now_ms`, so a value judged at `now_ms` is
    /// never part of its own training.
    pub fn training_window(&self, now_ms: i64, step_ms: i64) -> TrainingWindow {
        let step_ms = step_ms.max(1);
        let end_ms = (now_ms - 1).div_euclid(step_ms) * step_ms;
        let count = (millis(self.lookback) / step_ms).max(1) as usize;
        TrainingWindow {
            start_ms: end_ms - (count as i64 - 1) * step_ms,
            end_ms,
            step_ms,
            count,
        }
    }

    /// A refit is due at `now_ms` after one at `last_ms` (or none yet).
    pub fn refit_due(&self, last_ms: Option<i64>, now_ms: i64) -> bool {
        last_ms.is_none_or(|last| now_ms - last >= millis(self.refit_every))
    }
}

/// What the policy says about one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub assessment: Assessment,
    /// Reported: warning or worse, and not within a cooldown.
    pub reported: bool,
    /// Anomaly score in [0, 1]: |σ| / (|σ| + warning σ), so the warning
    /// threshold maps to 0.5; when only novel deviations count, the lesser
    /// of that and novelty / (novelty + 1), so 0.5 is exactly where a value
    /// is reported. 0 within a cooldown.
    pub score: f64,
}

/// One series' state under the policy: when it last reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesJudge {
    last_reported_ms: Option<i64>,
}

/// How many steps after the last training sample (`until_ms`) a value at
/// `at_ms` is (at least one).
pub fn steps_ahead(at_ms: i64, until_ms: i64, step_ms: i64) -> usize {
    let steps = (at_ms.saturating_sub(until_ms) as f64 / step_ms.max(1) as f64).ceil();
    (steps as i64).max(1) as usize
}

impl SeriesJudge {
    /// Judges `value` at `at_ms` with `model`, fitted on samples up to
    /// `until_ms` at `step_ms`.
    pub fn judge(
        &mut self,
        policy: &Policy,
        model: &Baseline,
        until_ms: i64,
        step_ms: i64,
        value: f64,
        at_ms: i64,
    ) -> Verdict {
        let assessment = model.assess(
            value,
            steps_ahead(at_ms, until_ms, step_ms),
            policy.thresholds,
        );
        let cooling = self
            .last_reported_ms
            .is_some_and(|last| at_ms - last < millis(policy.cooldown));
        if cooling {
            return Verdict {
                assessment,
                reported: false,
                score: 0.0,
            };
        }
        let warning = policy.thresholds.warning_sigma;
        let mut score = assessment.sigma.abs() / (assessment.sigma.abs() + warning);
        if policy.thresholds.novel_only {
            score = score.min(assessment.novelty / (assessment.novelty + 1.0));
        }
        let reported = assessment.severity.is_some();
        if reported {
            self.last_reported_ms = Some(at_ms);
        }
        Verdict {
            assessment,
            reported,
            score,
        }
    }
}
