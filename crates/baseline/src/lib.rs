//! Seasonal baselines for the baseline detector, with no I/O.
//!
//! The model is additive Holt-Winters (level, trend, one season: a day at the
//! series' step, i.e. hour-of-day and finer) on a regular series:
//!
//! ```text
//! forecast(t+1) = level + trend + season[t+1 mod m]
//! level'  = α (x - season) + (1-α)(level + trend)
//! trend'  = β (level' - level) + (1-β) trend
//! season' = γ (x - level') + (1-γ) season
//! ```
//!
//! α, β, γ are fitted on the history by minimising the one-step squared
//! error (coordinate-wise golden-section search). The prediction band uses a
//! *robust* residual scale, 1.4826 × the median absolute one-step error, so
//! past anomalies do not widen it; and while the final state is built, an
//! observation further than [`CLIP_SIGMA`] scales from its forecast is fed in
//! clipped, so a past spike does not bend the baseline either.
//!
//! Missing samples (NaN/±Inf, gaps) are skipped: the state advances on its
//! own forecast. Fewer than two full seasons of finite history is an error,
//! not a guess. A constant series gets a scale floor so that any change is
//! flagged, and no change is not.

mod streaming;
pub mod synthetic;

pub use streaming::{Observation, Policy, StreamingDetector};

/// Robust scale factor turning a median absolute deviation into σ for
/// normally distributed residuals.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Observations further than this many scales from their forecast are
/// clipped while the baseline state is built.
pub const CLIP_SIGMA: f64 = 5.0;

/// Severity thresholds in σ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning_sigma: f64,
    pub critical_sigma: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning_sigma: 3.0,
            critical_sigma: 5.0,
        }
    }
}

/// Why no baseline could be learnt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    #[error("season length must be at least 2 steps, got {0}")]
    Period(usize),
    #[error(
        "too little history: {finite} finite samples, need {needed} (two full seasons of {period})"
    )]
    InsufficientHistory {
        finite: usize,
        needed: usize,
        period: usize,
    },
}

/// Fitted smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

/// Holt-Winters state after the last trained sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub smoothing: Smoothing,
    level: f64,
    trend: f64,
    season: Vec<f64>,
    /// Season index of the *next* sample.
    next: usize,
    /// Robust one-step residual scale (σ).
    pub scale: f64,
}

/// What the baseline says about one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub expected: f64,
    pub std: f64,
    /// Signed deviation in σ.
    pub sigma: f64,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

struct Initial {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    start: usize,
}

/// Robust initialisation: level and trend from the medians of the first two
/// seasons, each season slot from the median over up to seven seasons of
/// (sample − its season's median), so an anomaly early in the history does
/// not become part of the baseline. Missing samples are skipped.
fn initial_state(values: &[f64], period: usize) -> Initial {
    let finite_median = |chunk: &[f64]| {
        let mut finite: Vec<f64> = chunk.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            f64::NAN
        } else {
            median(&mut finite)
        }
    };
    let seasons = (values.len() / period).clamp(2, 7);
    let centres: Vec<f64> = (0..seasons)
        .map(|k| finite_median(&values[k * period..(k + 1) * period]))
        .collect();
    let fallback = centres
        .iter()
        .copied()
        .find(|c| c.is_finite())
        .unwrap_or(0.0);
    let centre = |k: usize| {
        if centres[k].is_finite() {
            centres[k]
        } else {
            fallback
        }
    };
    let mut season = vec![0.0; period];
    let mut column = Vec::with_capacity(seasons);
    for (i, slot) in season.iter_mut().enumerate() {
        column.clear();
        column.extend(
            (0..seasons)
                .map(|k| values[k * period + i] - centre(k))
                .filter(|v| v.is_finite()),
        );
        *slot = if column.is_empty() {
            0.0
        } else {
            median(&mut column)
        };
    }
    Initial {
        level: centre(0),
        trend: (centre(1) - centre(0)) / period as f64,
        season,
        start: 0,
    }
}

/// Runs the recursions over `values`; returns the one-step SSE (after the
/// first season) and, when `residuals` is given, fills it.
fn run(
    values: &[f64],
    period: usize,
    s: Smoothing,
    init: &Initial,
    clip: Option<f64>,
    mut residuals: Option<&mut Vec<f64>>,
    mut cleaned: Option<&mut Vec<f64>>,
) -> (f64, f64, f64, Vec<f64>, usize) {
    let (mut level, mut trend) = (init.level, init.trend);
    let mut season = init.season.clone();
    let mut sse = 0.0;
    let mut idx = init.start;
    for (t, &x) in values.iter().enumerate() {
        let forecast = level + trend + season[idx];
        let observed = if x.is_finite() {
            let error = x - forecast;
            if t >= period {
                sse += error * error;
                if let Some(r) = residuals.as_deref_mut() {
                    r.push(error);
                }
            }
            match clip {
                Some(limit) if error.abs() > limit => forecast + limit * error.signum(),
                _ => x,
            }
        } else {
            forecast // missing: advance on the forecast
        };
        if let Some(c) = cleaned.as_deref_mut() {
            c.push(if x.is_finite() { observed } else { x });
        }
        let new_level = s.alpha * (observed - season[idx]) + (1.0 - s.alpha) * (level + trend);
        trend = s.beta * (new_level - level) + (1.0 - s.beta) * trend;
        season[idx] = s.gamma * (observed - new_level) + (1.0 - s.gamma) * season[idx];
        level = new_level;
        idx = if idx + 1 == period { 0 } else { idx + 1 };
    }
    (level, trend, sse, season, idx)
}

fn golden(mut lo: f64, mut hi: f64, iterations: usize, mut f: impl FnMut(f64) -> f64) -> f64 {
    const R: f64 = 0.618_033_988_749_895;
    let mut c = hi - R * (hi - lo);
    let mut d = lo + R * (hi - lo);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..iterations {
        if fc < fd {
            hi = d;
            d = c;
            fd = fc;
            c = hi - R * (hi - lo);
            fc = f(c);
        } else {
            lo = c;
            c = d;
            fc = fd;
            d = lo + R * (hi - lo);
            fd = f(d);
        }
    }
    (lo + hi) / 2.0
}

/// 1.4826 × the median absolute residual.
fn robust_scale(residuals: &[f64]) -> f64 {
    let mut absolute: Vec<f64> = residuals.iter().map(|r| r.abs()).collect();
    MAD_TO_SIGMA * median(&mut absolute)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

impl Baseline {
    /// Learns a baseline from `values`, one per step, oldest first (NaN for
    /// missing), with a season of `period` steps.
    pub fn fit(values: &[f64], period: usize) -> Result<Baseline, BaselineError> {
        if period < 2 {
            return Err(BaselineError::Period(period));
        }
        let finite = values.iter().filter(|v| v.is_finite()).count();
        let needed = 2 * period;
        if values.len() < needed || finite < needed {
            return Err(BaselineError::InsufficientHistory {
                finite,
                needed,
                period,
            });
        }
        // A first pass with ordinary parameters finds the residual scale and
        // clips past anomalies out, so neither the initial state nor the
        // fitted parameters chase them.
        let start = Smoothing {
            alpha: 0.3,
            beta: 0.01,
            gamma: 0.1,
        };
        let rough = initial_state(values, period);
        let mut residuals = Vec::with_capacity(values.len());
        run(
            values,
            period,
            start,
            &rough,
            None,
            Some(&mut residuals),
            None,
        );
        let rough_scale = robust_scale(&residuals);
        let mut cleaned = Vec::with_capacity(values.len());
        let clip = (rough_scale > 0.0).then_some(CLIP_SIGMA * rough_scale);
        run(
            values,
            period,
            start,
            &rough,
            clip,
            None,
            Some(&mut cleaned),
        );
        let values = cleaned.as_slice();

        let init = initial_state(values, period);
        let sse = |s: Smoothing| run(values, period, s, &init, None, None, None).2;
        // Coordinate-wise golden-section search, one sweep from a sensible
        // start (a second sweep cost half again the time and changed little).
        let mut s = start;
        s.alpha = golden(0.001, 0.999, 8, |a| sse(Smoothing { alpha: a, ..s }));
        s.beta = golden(0.0, 0.2, 6, |b| sse(Smoothing { beta: b, ..s }));
        s.gamma = golden(0.001, 0.999, 8, |g| sse(Smoothing { gamma: g, ..s }));
        residuals.clear();
        run(values, period, s, &init, None, Some(&mut residuals), None);
        let raw_scale = robust_scale(&residuals);
        let clip = (raw_scale > 0.0).then_some(CLIP_SIGMA * raw_scale);
        let (level, trend, _, season, next) = run(values, period, s, &init, clip, None, None);
        let magnitude = values
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.abs())
            .fold(0.0, f64::max);
        Ok(Baseline {
            smoothing: s,
            level,
            trend,
            season,
            next,
            scale: raw_scale.max(scale_floor(magnitude)),
        })
    }

    /// Expected value `steps_ahead` steps after the last trained sample (1 =
    /// the next one).
    pub fn expected(&self, steps_ahead: usize) -> f64 {
        let h = steps_ahead.max(1);
        let idx = (self.next + h - 1) % self.season.len();
        self.level + h as f64 * self.trend + self.season[idx]
    }

    /// Judges `value` observed `steps_ahead` steps after the last trained sample.
    pub fn assess(&self, value: f64, steps_ahead: usize, thresholds: Thresholds) -> Assessment {
        let expected = self.expected(steps_ahead);
        let sigma = (value - expected) / self.scale;
        let severity = if sigma.abs() >= thresholds.critical_sigma {
            Some(Severity::Critical)
        } else if sigma.abs() >= thresholds.warning_sigma {
            Some(Severity::Warning)
        } else {
            None
        };
        Assessment {
            expected,
            std: self.scale,
            sigma,
            severity,
        }
    }

    /// Feeds the next observed sample (online update; far outliers clipped,
    /// missing ones skipped).
    pub fn update(&mut self, value: f64) {
        let idx = self.next;
        let forecast = self.level + self.trend + self.season[idx];
        let observed = if value.is_finite() {
            let limit = CLIP_SIGMA * self.scale;
            let error = value - forecast;
            if error.abs() > limit {
                forecast + limit * error.signum()
            } else {
                value
            }
        } else {
            forecast
        };
        let s = self.smoothing;
        let level =
            s.alpha * (observed - self.season[idx]) + (1.0 - s.alpha) * (self.level + self.trend);
        self.trend = s.beta * (level - self.level) + (1.0 - s.beta) * self.trend;
        self.season[idx] = s.gamma * (observed - level) + (1.0 - s.gamma) * self.season[idx];
        self.level = level;
        self.next = (idx + 1) % self.season.len();
    }

    pub fn period(&self) -> usize {
        self.season.len()
    }
}

/// Smallest σ used: a constant series has zero residual scale, and then any
/// change should be flagged while no change is not.
fn scale_floor(magnitude: f64) -> f64 {
    (magnitude * 1e-3).max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of 5-minute steps.
    const DAY: usize = 288;

    fn daily(days: usize, noise: f64) -> Vec<f64> {
        (0..days * DAY)
            .map(|i| {
                let hour = (i % DAY) as f64 / 12.0;
                let daily = 50.0 + 30.0 * ((hour - 6.0) / 24.0 * std::f64::consts::TAU).sin();
                // Deterministic pseudo-noise.
                let jitter = ((i as f64) * 12.9898).sin() * 43_758.545_3;
                daily + noise * (jitter - jitter.floor() - 0.5) * 2.0
            })
            .collect()
    }

    #[test]
    fn learns_a_daily_shape_and_flags_spikes_not_peaks() {
        let history = daily(7, 1.0);
        let baseline = Baseline::fit(&history, DAY).unwrap();
        let next_day = daily(8, 1.0);
        // The ordinary daily peak (hour 12) an hour ahead is not flagged.
        let peak_step = 7 * DAY + 12 * 12;
        let steps = peak_step - 7 * DAY + 1;
        let ordinary = baseline.assess(next_day[peak_step], steps, Thresholds::default());
        assert_eq!(ordinary.severity, None, "{ordinary:?}");
        assert!(
            (ordinary.expected - next_day[peak_step]).abs() < 3.0,
            "{ordinary:?}"
        );
        // The same time with +25 is a critical spike.
        let spike = baseline.assess(next_day[peak_step] + 25.0, steps, Thresholds::default());
        assert_eq!(spike.severity, Some(Severity::Critical), "{spike:?}");
        assert!(spike.sigma > 5.0);
        // σ is about the noise level (uniform ±1: σ ≈ 0.58), not the daily swing.
        assert!(
            baseline.scale > 0.2 && baseline.scale < 1.5,
            "{}",
            baseline.scale
        );
    }

    #[test]
    fn past_anomalies_do_not_widen_the_band() {
        let clean = Baseline::fit(&daily(7, 1.0), DAY).unwrap();
        let mut dirty_history = daily(7, 1.0);
        for i in (0..dirty_history.len()).step_by(97) {
            dirty_history[i] += 200.0;
        }
        let dirty = Baseline::fit(&dirty_history, DAY).unwrap();
        assert!(
            dirty.scale < clean.scale * 1.5,
            "{} vs {}",
            dirty.scale,
            clean.scale
        );
        assert!(
            (dirty.expected(1) - clean.expected(1)).abs() < 3.0,
            "{} vs {} ({:?} vs {:?}, scale {} vs {})",
            dirty.expected(1),
            clean.expected(1),
            dirty.smoothing,
            clean.smoothing,
            dirty.scale,
            clean.scale
        );
    }

    #[test]
    fn gaps_and_non_finite_samples_are_skipped() {
        let mut history = daily(7, 1.0);
        for i in (0..history.len()).step_by(10) {
            history[i] = if i % 20 == 0 { f64::NAN } else { f64::INFINITY };
        }
        let baseline = Baseline::fit(&history, DAY).unwrap();
        assert!(baseline.expected(1).is_finite());
        assert!(baseline.scale.is_finite() && baseline.scale < 2.0);
    }

    #[test]
    fn too_little_history_is_an_error() {
        let err = Baseline::fit(&daily(1, 1.0), DAY).unwrap_err();
        assert_eq!(
            err,
            BaselineError::InsufficientHistory {
                finite: 288,
                needed: 576,
                period: 288
            }
        );
        assert!(err.to_string().contains("two full seasons"));
        let mut sparse = daily(3, 1.0);
        sparse.iter_mut().step_by(2).for_each(|v| *v = f64::NAN);
        assert!(Baseline::fit(&sparse, DAY).is_err());
    }

    #[test]
    fn constant_series() {
        let baseline = Baseline::fit(&vec![7.0; 3 * DAY], DAY).unwrap();
        assert_eq!(
            baseline.assess(7.0, 1, Thresholds::default()).severity,
            None
        );
        assert_eq!(
            baseline.assess(7.5, 1, Thresholds::default()).severity,
            Some(Severity::Critical)
        );
    }

    #[test]
    fn online_update_follows_the_series() {
        let series = daily(9, 1.0);
        let mut baseline = Baseline::fit(&series[..7 * DAY], DAY).unwrap();
        let mut flagged = 0;
        for &value in &series[7 * DAY..] {
            if baseline
                .assess(value, 1, Thresholds::default())
                .severity
                .is_some()
            {
                flagged += 1;
            }
            baseline.update(value);
        }
        assert!(
            flagged <= 2,
            "{flagged} false alarms over two ordinary days"
        );
    }
}
