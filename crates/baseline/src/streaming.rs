//! The detector policy the baseline sensor applies, as a streaming state
//! machine for replaying a series (the NAB backtest): keep a bounded
//! history, refit on a schedule, judge each new value against the last
//! fit's forecast, and suppress repeats of a report for a cooldown. The
//! sensor (`inspector-baseline-detector`) does the same over Prometheus:
//! a background refit on the lookback, the instant value judged with
//! [`Baseline::assess`] steps ahead of the last fit, a per-series cooldown.

use std::collections::VecDeque;

use crate::{Assessment, Baseline, Thresholds};

/// How the detector behaves, in steps of the series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Season length (a day).
    pub period: usize,
    /// Most history kept for fitting (e.g. 7 days).
    pub history: usize,
    /// Steps between refits.
    pub refit_every: usize,
    /// Steps after a report during which the series reports nothing more.
    pub cooldown: usize,
    pub thresholds: Thresholds,
}

/// The verdict on one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// `None` while there is too little history for a baseline.
    pub assessment: Option<Assessment>,
    /// The value is reported (warning or worse, not in a cooldown).
    pub reported: bool,
    /// Anomaly score in [0, 1]: |σ| / (|σ| + warning σ), so the warning
    /// threshold maps to 0.5; when only novel deviations count, the lesser
    /// of that and novelty / (novelty + 1), so 0.5 is exactly where a value
    /// is reported. 0 while suppressed or without a baseline.
    pub score: f64,
}

/// Streaming state of one series.
#[derive(Debug, Clone)]
pub struct StreamingDetector {
    policy: Policy,
    history: VecDeque<f64>,
    model: Option<Baseline>,
    since_fit: usize,
    cooldown_left: usize,
}

impl StreamingDetector {
    pub fn new(policy: Policy) -> Self {
        StreamingDetector {
            policy,
            history: VecDeque::with_capacity(policy.history + 1),
            model: None,
            since_fit: 0,
            cooldown_left: 0,
        }
    }

    /// Judges `value` (the next step), then adds it to the history.
    ///
    /// As in the sensor, a value is judged against the last fit's forecast
    /// that many steps ahead; the model learns new values only at the next
    /// refit (no online update), so the backtest runs exactly what
    /// production runs.
    pub fn observe(&mut self, value: f64) -> Observation {
        if self.model.is_none() || self.since_fit >= self.policy.refit_every {
            let history: Vec<f64> = self.history.iter().copied().collect();
            if let Ok(model) = Baseline::fit(&history, self.policy.period) {
                self.model = Some(model);
                self.since_fit = 0;
            }
        }
        let assessment = self
            .model
            .as_ref()
            .filter(|_| value.is_finite())
            .map(|m| m.assess(value, self.since_fit + 1, self.policy.thresholds));
        let mut observation = Observation {
            assessment,
            reported: false,
            score: 0.0,
        };
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
        } else if let Some(a) = assessment {
            let warning = self.policy.thresholds.warning_sigma;
            observation.score = a.sigma.abs() / (a.sigma.abs() + warning);
            if self.policy.thresholds.novel_only {
                observation.score = observation.score.min(a.novelty / (a.novelty + 1.0));
            }
            if a.severity.is_some() {
                observation.reported = true;
                self.cooldown_left = self.policy.cooldown;
            }
        }
        if self.model.is_some() {
            self.since_fit += 1;
        }
        self.history.push_back(value);
        if self.history.len() > self.policy.history {
            self.history.pop_front();
        }
        observation
    }
}
