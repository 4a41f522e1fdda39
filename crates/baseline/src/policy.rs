//! The per-series judgement the baseline sensor makes and the NAB replay
//! replays, defined once and driven by an injected clock (times in
//! milliseconds): when to refit and on which samples, how far ahead a value
//! is judged, what counts as new for the series, and the cooldown after a
//! report. `inspector-baseline-detector` runs it against Prometheus,
//! [`crate::StreamingDetector`] over a recorded series; a test in the
//! detector proves they give the same verdicts.
//!
//! A value is reported when it is at least the warning σ from its expected
//! value *and* the series has not done this within the policy's memory,
//! by one of two kinds of [`Evidence`]:
//! - **deviation**: the value is further from its expected value than any
//!   value in the memory (a spike, a drop): the fitted models' one-step
//!   deviations and the values the judge itself judged;
//! - **sustained**: the last hour's values sit a median |deviation| from
//!   their expected values larger than in any hour of the memory: a level
//!   shift, or a variance burst, which one spike cannot fake and which an
//!   earlier, larger spike does not hide.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{Assessment, Baseline, Severity, Thresholds, finite_median};

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
    /// How far back "new" looks: a value is novel when the series has not
    /// strayed as far within this long (the references of every model
    /// fitted in it, and the hours the judge itself watched).
    pub memory: Duration,
}

impl Default for Policy {
    /// Seven days of history, refit hourly, 12 h cooldown per series, 3σ /
    /// 5σ, novel only against two weeks of memory. Memory and cooldown were
    /// chosen on NAB by leave-one-category-out (the `settings_sweep`
    /// example: three of the four held-out categories picked these on the
    /// other three, the fourth picked 56 d / 12 h). Two weeks is also the
    /// least that holds a weekly pattern once before the current week. A
    /// 24 h cooldown hid windows that follow within a day; 6 h repeats
    /// reports of one episode.
    fn default() -> Self {
        Policy {
            thresholds: Thresholds::default(),
            lookback: Duration::from_secs(7 * 86_400),
            refit_every: Duration::from_secs(3_600),
            cooldown: Duration::from_secs(12 * 3_600),
            memory: Duration::from_secs(14 * 86_400),
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

    fn severity(&self, sigma: f64) -> Option<Severity> {
        let sigma = sigma.abs();
        if sigma >= self.thresholds.critical_sigma {
            Some(Severity::Critical)
        } else if sigma >= self.thresholds.warning_sigma {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

/// What the series had not done within the memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evidence {
    /// The value is further from its expected value than any within the
    /// memory, by `novelty` (≥ 1 is new).
    Deviation { novelty: f64 },
    /// Over the last hour the values sat a median `spread` σ from their
    /// expected values, `novelty` times the most of any hour within the
    /// memory (≥ 1 is new). `shift` is the median signed deviation, in the
    /// metric's unit: when it carries most of the spread the level moved,
    /// otherwise the series got noisier.
    Sustained {
        spread: f64,
        shift: f64,
        novelty: f64,
        /// The span the medians are over (an hour, or one step when steps
        /// are longer).
        over: Duration,
    },
}

impl Evidence {
    pub fn novelty(&self) -> f64 {
        match *self {
            Evidence::Deviation { novelty } | Evidence::Sustained { novelty, .. } => novelty,
        }
    }
}

impl Verdict {
    /// Which detector fired and why, in words, for the finding's text (an
    /// LLM investigator reads it): `memory` is the policy's.
    pub fn reason(&self, memory: Duration) -> String {
        let memory = spoken(memory);
        let sigma = self.assessment.sigma;
        match self.evidence {
            Evidence::Deviation { novelty } => format!(
                "deviation detector: {:.1}× the largest deviation in the last {memory}",
                novelty
            ),
            Evidence::Sustained {
                spread,
                shift,
                novelty,
                over,
            } => {
                let over = spoken(over);
                // The level moved when the median signed deviation carries
                // at least half the median absolute one.
                if shift.abs() >= 0.5 * spread * self.assessment.std {
                    format!(
                        "level-shift detector: level shifted by {shift:+.4} over the last {over} \
                         (median {spread:.1}σ), {novelty:.1}× any hour in the last {memory}"
                    )
                } else {
                    format!(
                        "variance detector: values strayed a median {spread:.1}σ from expected \
                         over the last {over} (now {:.1}σ), {novelty:.1}× any hour in the last {memory}",
                        sigma.abs()
                    )
                }
            }
        }
    }
}

/// What the policy says about one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub assessment: Assessment,
    /// The stronger of the two kinds of evidence (the larger novelty).
    pub evidence: Evidence,
    /// By σ (warning from the warning σ, critical from the critical σ),
    /// when the evidence is new or novelty is not required; else `None`.
    pub severity: Option<Severity>,
    /// Reported: a severity, and not within a cooldown.
    pub reported: bool,
    /// Anomaly score in [0, 1]: |σ| / (|σ| + warning σ), so the warning
    /// threshold maps to 0.5; when only novel values count, the lesser of
    /// that and novelty / (novelty + 1), so 0.5 is exactly where a value is
    /// reported. 0 within a cooldown.
    pub score: f64,
}

/// The largest deviation and spread seen in a span of time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    start_ms: i64,
    /// End of the latest time merged in (exclusive).
    end_ms: i64,
    deviation: f64,
    spread: f64,
}

/// The largest deviation and spread seen, per bucket of time: an hour for
/// the last day, a day before that. A series' state stays a few dozen
/// buckets (under 2 KB) however long the memory, at the price of a memory
/// that ends to the day.
#[derive(Debug, Clone, Default, PartialEq)]
struct Maxima {
    /// Oldest first.
    buckets: VecDeque<Bucket>,
}

const DAY_MS: i64 = 24 * HOUR_MS;

impl Maxima {
    /// Records what was seen at `at_ms`, then forgets the buckets that
    /// ended before `forget_before_ms`.
    fn add(&mut self, at_ms: i64, deviation: f64, spread: f64, forget_before_ms: i64) {
        match self.buckets.back_mut() {
            Some(last) if last.start_ms <= at_ms && at_ms < last.end_ms => {
                last.deviation = last.deviation.max(deviation);
                last.spread = last.spread.max(spread);
            }
            _ => {
                let start_ms = at_ms.div_euclid(HOUR_MS) * HOUR_MS;
                self.buckets.push_back(Bucket {
                    start_ms,
                    end_ms: start_ms + HOUR_MS,
                    deviation,
                    spread,
                });
                self.compact(at_ms);
            }
        }
        while self
            .buckets
            .front()
            .is_some_and(|b| b.end_ms < forget_before_ms)
        {
            self.buckets.pop_front();
        }
    }

    /// Hours that ended a day ago or more join their day's bucket.
    fn compact(&mut self, now_ms: i64) {
        let mut i = 0;
        while i < self.buckets.len() {
            let bucket = self.buckets[i];
            if bucket.end_ms > now_ms - DAY_MS {
                break;
            }
            let day = bucket.start_ms.div_euclid(DAY_MS) * DAY_MS;
            match i.checked_sub(1).map(|k| self.buckets[k]) {
                Some(before) if before.start_ms == day => {
                    let merged = &mut self.buckets[i - 1];
                    merged.end_ms = merged.end_ms.max(bucket.end_ms);
                    merged.deviation = merged.deviation.max(bucket.deviation);
                    merged.spread = merged.spread.max(bucket.spread);
                    self.buckets.remove(i);
                }
                _ => {
                    self.buckets[i].start_ms = day;
                    i += 1;
                }
            }
        }
    }

    /// The largest (deviation, spread) in the buckets that ended by
    /// `before_ms`.
    fn largest(&self, before_ms: i64) -> (f64, f64) {
        self.buckets
            .iter()
            .filter(|b| b.end_ms <= before_ms)
            .fold((0.0, 0.0), |(d, s), b| {
                (d.max(b.deviation), s.max(b.spread))
            })
    }
}

/// One series' state under the policy: when it last reported, the
/// references within the memory, and the values of the last hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesJudge {
    last_reported_ms: Option<i64>,
    /// The references of the models judged with (how far each one's
    /// training history strayed), by the end of their training.
    trained: Maxima,
    last_until_ms: Option<i64>,
    /// (time, deviation, σ) of the values judged within the span.
    recent: VecDeque<(i64, f64, f64)>,
    /// The largest |deviation| and spread the judge itself saw, since
    /// in-sample one-step residuals understate how far values an hour ahead
    /// of their fit stray (NAB, over the models' references alone: +1.2
    /// standard, +2.5 reward_low_FP_rate). The hours that overlap the span
    /// being judged are left out, so a disturbance is not its own
    /// reference.
    judged: Maxima,
}

/// How many steps after the last training sample (`until_ms`) a value at
/// `at_ms` is (at least one).
pub fn steps_ahead(at_ms: i64, until_ms: i64, step_ms: i64) -> usize {
    let steps = (at_ms.saturating_sub(until_ms) as f64 / step_ms.max(1) as f64).ceil();
    (steps as i64).max(1) as usize
}

const HOUR_MS: i64 = 3_600_000;

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
        let assessment = model.assess(value, steps_ahead(at_ms, until_ms, step_ms));
        let memory = millis(policy.memory);
        self.remember(model, until_ms, (memory - millis(policy.lookback)).max(0));

        // A single value against the largest one-step deviation.
        let deviation = value - assessment.expected;
        let span_ms = model.span() as i64 * step_ms.max(1);
        let (trained_deviation, trained_spread) = self.trained.largest(i64::MAX);
        let (judged_deviation, judged_spread) = self.judged.largest(at_ms - span_ms);
        let largest = trained_deviation.max(judged_deviation);
        let single = Evidence::Deviation {
            novelty: novelty(deviation.abs(), largest),
        };

        // The last hour against the worst hour.
        self.recent.push_back((at_ms, deviation, assessment.sigma));
        while self
            .recent
            .front()
            .is_some_and(|(t, _, _)| *t <= at_ms - span_ms)
        {
            self.recent.pop_front();
        }
        let mut values: Vec<f64> = self.recent.iter().map(|r| r.2.abs()).collect();
        let mut scratch = Vec::with_capacity(values.len());
        let spread = finite_median(&values, &mut scratch).unwrap_or(0.0);
        values.clear();
        values.extend(self.recent.iter().map(|r| r.1));
        let shift = finite_median(&values, &mut scratch).unwrap_or(0.0);
        let seen = trained_spread.max(judged_spread);
        // A span not yet filled (a judge just started) has no median to
        // speak of: one value would pass for an hour.
        let filled = self.recent.len() >= model.span();
        let sustained = Evidence::Sustained {
            spread,
            shift,
            novelty: if filled { novelty(spread, seen) } else { 0.0 },
            over: Duration::from_millis(span_ms.unsigned_abs()),
        };
        self.judged
            .add(at_ms, deviation.abs(), spread, at_ms - memory);

        let evidence = if sustained.novelty() > single.novelty() {
            sustained
        } else {
            single
        };
        let novel = !policy.thresholds.novel_only || evidence.novelty() >= 1.0;
        let severity = policy.severity(assessment.sigma).filter(|_| novel);
        let cooling = self
            .last_reported_ms
            .is_some_and(|last| at_ms - last < millis(policy.cooldown));
        if cooling {
            return Verdict {
                assessment,
                evidence,
                severity,
                reported: false,
                score: 0.0,
            };
        }
        let warning = policy.thresholds.warning_sigma;
        let mut score = assessment.sigma.abs() / (assessment.sigma.abs() + warning);
        if policy.thresholds.novel_only {
            let novelty = evidence.novelty();
            score = score.min(novelty / (novelty + 1.0));
        }
        let reported = severity.is_some();
        if reported {
            self.last_reported_ms = Some(at_ms);
        }
        Verdict {
            assessment,
            evidence,
            severity,
            reported,
            score,
        }
    }

    /// Adds a newly fitted model's references (once per model) and forgets
    /// the models trained more than `horizon_ms` before this one ended.
    fn remember(&mut self, model: &Baseline, until_ms: i64, horizon_ms: i64) {
        if self.last_until_ms != Some(until_ms) {
            self.last_until_ms = Some(until_ms);
            self.trained.add(
                until_ms,
                model.largest_deviation,
                model.largest_spread,
                until_ms - horizon_ms,
            );
        }
    }
}

/// A duration as a person says it in a sentence: "14 days", "1 hour",
/// "30 minutes" (the largest whole unit), else seconds.
fn spoken(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(size, _)| seconds >= *size && seconds.is_multiple_of(*size))
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// `amount` over the largest seen before (∞ when nothing was seen and
/// `amount` is not zero).
fn novelty(amount: f64, largest: f64) -> f64 {
    if amount == 0.0 { 0.0 } else { amount / largest }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StreamingDetector, synthetic};

    const STEP_MS: i64 = 300_000;
    const DAY: usize = 288;

    /// Replays `values` under `policy`: the reported rows with their verdicts.
    fn reports(values: &[f64], policy: Policy) -> Vec<(usize, Verdict)> {
        let mut replay = StreamingDetector::new(policy, STEP_MS);
        values
            .iter()
            .enumerate()
            .filter_map(|(row, v)| replay.observe(*v).map(|verdict| (row, verdict)))
            .filter(|(_, verdict)| verdict.reported)
            .collect()
    }

    /// Ten days of a daily cycle with ±1 jitter and one +40 spike on day 3.
    fn spiky_history() -> Vec<f64> {
        let mut values = synthetic::series(3, 10 * DAY);
        values[3 * DAY + 100] += 40.0;
        values
    }

    #[test]
    fn a_level_shift_smaller_than_an_earlier_spike_is_reported() {
        let mut values = spiky_history();
        let shift_at = 9 * DAY + 40;
        for value in &mut values[shift_at..] {
            *value += 8.0;
        }
        let found = reports(&values, Policy::default());
        let after: Vec<_> = found.iter().filter(|(row, _)| *row >= shift_at).collect();
        let (row, verdict) = after.first().expect("the shift is reported");
        // Within the hour, by the level-shift detector: one value of +8 is
        // a fifth of the spike, so the deviation detector stays quiet.
        assert!(*row < shift_at + 12, "row {row}");
        assert!(
            matches!(verdict.evidence, Evidence::Sustained { shift, novelty, .. } if shift > 6.0 && novelty >= 1.0),
            "{verdict:?}"
        );
        let reason = verdict.reason(Policy::default().memory);
        assert!(
            reason.starts_with("level-shift detector: level shifted by +"),
            "{reason}"
        );
        assert!(
            reason.contains(" over the last 1 hour (median ")
                && reason.ends_with("any hour in the last 14 days"),
            "{reason}"
        );
        // Without the sustained evidence only the spike's size counts.
        assert!(after.iter().all(
            |(_, v)| !matches!(v.evidence, Evidence::Deviation { novelty } if novelty >= 1.0)
        ));
    }

    #[test]
    fn a_variance_burst_is_reported_as_one() {
        let mut values = spiky_history();
        let burst_at = 9 * DAY + 40;
        for (k, value) in values[burst_at..burst_at + 24].iter_mut().enumerate() {
            // ±9 alternating: a much noisier hour, the level unchanged.
            *value += if k % 2 == 0 { 9.0 } else { -9.0 };
        }
        let found = reports(&values, Policy::default());
        let (row, verdict) = found
            .iter()
            .find(|(row, _)| *row >= burst_at)
            .expect("the burst is reported");
        assert!(*row < burst_at + 24, "row {row}");
        let reason = verdict.reason(Policy::default().memory);
        assert!(reason.starts_with("variance detector"), "{reason}");
        assert!(
            reason.contains("from expected over the last 1 hour (now "),
            "{reason}"
        );
    }

    #[test]
    fn the_memory_is_how_far_back_new_looks() {
        // The same +40 spike again eight days later: within two weeks it is
        // nothing new; a week's memory has forgotten the first.
        let mut values = spiky_history();
        let again = 3 * DAY + 100 + 8 * DAY + 5;
        values.extend(synthetic::series(3, 13 * DAY).split_off(10 * DAY));
        values[again] += 40.0;
        let new = |policy: Policy| {
            reports(&values, policy)
                .iter()
                .any(|(row, _)| *row == again)
        };
        assert!(!new(Policy::default()));
        let week = Policy {
            memory: Duration::from_secs(7 * 86_400),
            ..Policy::default()
        };
        assert!(new(week));
    }

    #[test]
    fn the_record_is_bounded_and_forgets_by_the_day() {
        let mut record = Maxima::default();
        let memory = 14 * DAY_MS;
        // Sixty days of a value a minute; one large deviation on day 10.
        for minute in 0..60 * 24 * 60 {
            let at = minute * 60_000;
            let deviation = if minute == 10 * 24 * 60 { 50.0 } else { 1.0 };
            record.add(at, deviation, 0.5, at - memory);
            assert!(record.buckets.len() <= 16 + 25, "{}", record.buckets.len());
            let day = at / DAY_MS;
            let (largest, _) = record.largest(at);
            // Remembered once its hour has ended, until the memory (to the
            // day) has passed.
            if at >= 10 * DAY_MS + HOUR_MS && day < 24 {
                assert_eq!(largest, 50.0, "day {day}");
            }
            if day >= 26 {
                assert_eq!(largest, 1.0, "day {day}");
            }
        }
        // What ended after `before` is left out.
        let mut record = Maxima::default();
        record.add(0, 7.0, 3.0, 0);
        record.add(HOUR_MS + 1, 2.0, 9.0, 0);
        assert_eq!(record.largest(HOUR_MS), (7.0, 3.0));
        assert_eq!(record.largest(2 * HOUR_MS), (7.0, 9.0));
    }

    #[test]
    fn durations_read_as_spoken() {
        assert_eq!(spoken(Duration::from_secs(14 * 86_400)), "14 days");
        assert_eq!(spoken(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(spoken(Duration::from_secs(5_400)), "90 minutes");
        assert_eq!(spoken(Duration::from_secs(45)), "45 seconds");
    }

    #[test]
    fn a_memory_shorter_than_the_lookback_still_remembers_the_current_model() {
        let policy = Policy {
            memory: Duration::ZERO,
            ..Policy::default()
        };
        // The spike is inside every later model's own history, so ordinary
        // days after it are not new.
        let values = spiky_history();
        let late: Vec<_> = reports(&values, policy)
            .into_iter()
            .filter(|(row, _)| *row > 4 * DAY)
            .collect();
        assert!(late.is_empty(), "{late:?}");
    }
}
