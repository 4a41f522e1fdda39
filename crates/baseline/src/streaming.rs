//! The sensor's policy ([`crate::Policy`]) replayed over a recorded series
//! (the NAB backtest): the value at row `i` is the sample at `i × step`;
//! refits happen when the policy says, on the window it says, and each
//! value is judged by the same [`SeriesJudge`] the sensor keeps per series.

use std::collections::VecDeque;

use crate::Baseline;
use crate::policy::{Policy, SeriesJudge, Verdict};

/// Streaming state of one series.
#[derive(Debug, Clone)]
pub struct StreamingDetector {
    policy: Policy,
    step_ms: i64,
    /// The most recent values, the last at row `next - 1`.
    history: VecDeque<f64>,
    /// Row of the next value.
    next: i64,
    /// The model and the time of its last training sample.
    model: Option<(Baseline, i64)>,
    last_refit_ms: Option<i64>,
    judge: SeriesJudge,
}

impl StreamingDetector {
    pub fn new(policy: Policy, step_ms: i64) -> Self {
        StreamingDetector {
            policy,
            step_ms: step_ms.max(1),
            history: VecDeque::new(),
            next: 0,
            model: None,
            last_refit_ms: None,
            judge: SeriesJudge::default(),
        }
    }

    /// Judges `value` (the next row), then adds it to the history. `None`
    /// while there is no baseline yet, or for a missing value.
    pub fn observe(&mut self, value: f64) -> Option<Verdict> {
        let at_ms = self.next * self.step_ms;
        if self.policy.refit_due(self.last_refit_ms, at_ms) {
            self.last_refit_ms = Some(at_ms);
            self.refit(at_ms);
        }
        let verdict = match &self.model {
            Some((model, until_ms)) if value.is_finite() => {
                Some(
                    self.judge
                        .judge(&self.policy, model, *until_ms, self.step_ms, value, at_ms),
                )
            }
            _ => None,
        };
        self.history.push_back(value);
        self.next += 1;
        let window = self.policy.training_window(at_ms, self.step_ms).count + 1;
        while self.history.len() > window {
            self.history.pop_front();
        }
        verdict
    }

    /// Fits on the policy's window before `at_ms` (missing rows, before the
    /// series began, as NaN, as Prometheus leaves them); a failed fit keeps
    /// the last model, as the sensor does.
    fn refit(&mut self, at_ms: i64) {
        let window = self.policy.training_window(at_ms, self.step_ms);
        let first_row = window.start_ms.div_euclid(self.step_ms);
        let history_first = self.next - self.history.len() as i64;
        let values: Vec<f64> = (0..window.count as i64)
            .map(|k| {
                let row = first_row + k;
                if row >= history_first && row < self.next {
                    self.history[(row - history_first) as usize]
                } else {
                    f64::NAN
                }
            })
            .collect();
        let previous = self
            .model
            .as_ref()
            .map(|(model, _)| Policy::season(model, self.step_ms));
        if let Ok(model) = self.policy.fit(&values, self.step_ms, previous) {
            self.model = Some((model, window.end_ms));
        }
    }
}
