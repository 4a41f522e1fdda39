//! Trend maths for the trend predictor, with no I/O.
//!
//! [`fit_line`] is an ordinary least-squares fit of value against time. It is
//! written to agree with PromQL's `predict_linear`: x is measured in seconds
//! relative to an origin (Prometheus uses the evaluation time), the sums are
//! compensated (Kahan–Neumaier) as in Prometheus' `linearRegression`, and
//! [`LinearFit::value_at`] computes `slope * dt + intercept` in the same order,
//! so the two agree to rounding.
//!
//! [`assess`] turns a fit into an outlook against a threshold rule:
//! already past it, crossing within the horizon, or not.
//!
//! Confidence comes from the coefficient of determination R²:
//! `high` when R² ≥ 0.8, `medium` when R² ≥ 0.5, `low` otherwise. Only
//! high- and medium-confidence crossings are worth reporting: below 0.5 the
//! line explains less than half of the variance and the crossing time is
//! mostly noise.

/// R² at or above which a trend is [`Confidence::High`].
pub const HIGH_CONFIDENCE_R2: f64 = 0.8;
/// R² at or above which a trend is [`Confidence::Medium`].
pub const MEDIUM_CONFIDENCE_R2: f64 = 0.5;

/// One sample: Unix time in milliseconds and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t_ms: i64,
    pub value: f64,
}

impl Point {
    pub fn new(t_ms: i64, value: f64) -> Self {
        Point { t_ms, value }
    }
}

/// Why no line could be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("too few samples to fit a trend: got {got}, need at least {need}")]
    TooFewSamples { got: usize, need: usize },
    #[error("sample at {t_ms} ms is not a finite number ({value})")]
    NonFinite { t_ms: i64, value: f64 },
    #[error("all samples share one timestamp; a slope needs a time spread")]
    NoTimeSpread,
}

/// A fitted line `value(t) = value_at_origin + slope_per_second * (t - origin)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    /// Change of the value per second.
    pub slope_per_second: f64,
    /// Fitted value at `origin_ms` (the intercept, in PromQL's terms).
    pub value_at_origin: f64,
    /// The time x is measured from.
    pub origin_ms: i64,
    /// Coefficient of determination in [0, 1]; 0 for a constant series,
    /// where a trend explains nothing.
    pub r_squared: f64,
    /// Number of samples fitted.
    pub samples: usize,
}

impl LinearFit {
    /// The fitted value at `t_ms`. Same arithmetic as `predict_linear`:
    /// `slope * (t - origin) + intercept`.
    pub fn value_at(&self, t_ms: i64) -> f64 {
        let dt = t_ms.saturating_sub(self.origin_ms) as f64 / 1e3;
        self.slope_per_second * dt + self.value_at_origin
    }

    /// Change of the value per hour.
    pub fn slope_per_hour(&self) -> f64 {
        self.slope_per_second * 3600.0
    }

    pub fn confidence(&self) -> Confidence {
        Confidence::from_r_squared(self.r_squared)
    }
}

/// Compensated summation (Neumaier's variant of Kahan), as Prometheus uses.
#[derive(Debug, Default, Clone, Copy)]
struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    fn add(&mut self, value: f64) {
        let total = self.sum + value;
        if total.is_infinite() {
            self.compensation = 0.0;
        } else if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - total) + value;
        } else {
            self.compensation += (value - total) + self.sum;
        }
        self.sum = total;
    }

    fn total(self) -> f64 {
        self.sum + self.compensation
    }
}

/// Fits a least-squares line to `points`, measuring time from `origin_ms`.
///
/// Needs at least two finite samples at two different times. Points need not
/// be sorted.
pub fn fit_line(points: &[Point], origin_ms: i64) -> Result<LinearFit, FitError> {
    if points.len() < 2 {
        return Err(FitError::TooFewSamples {
            got: points.len(),
            need: 2,
        });
    }
    if let Some(p) = points.iter().find(|p| !p.value.is_finite()) {
        return Err(FitError::NonFinite {
            t_ms: p.t_ms,
            value: p.value,
        });
    }
    let n = points.len() as f64;
    let (mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) = (
        CompensatedSum::default(),
        CompensatedSum::default(),
        CompensatedSum::default(),
        CompensatedSum::default(),
    );
    let first = points[0].value;
    let mut constant = true;
    for p in points {
        constant &= p.value == first;
        // Saturating: the client bounds timestamps, but this crate trusts no caller.
        let x = p.t_ms.saturating_sub(origin_ms) as f64 / 1e3;
        sum_x.add(x);
        sum_y.add(p.value);
        sum_xy.add(x * p.value);
        sum_x2.add(x * x);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) =
        (sum_x.total(), sum_y.total(), sum_xy.total(), sum_x2.total());
    let var_x = sum_x2 - sum_x * sum_x / n;
    if constant {
        // Prometheus special-cases constant series the same way: slope 0,
        // intercept the value, whatever the time spread.
        return Ok(LinearFit {
            slope_per_second: 0.0,
            value_at_origin: first,
            origin_ms,
            r_squared: 0.0,
            samples: points.len(),
        });
    }
    if var_x <= 0.0 {
        return Err(FitError::NoTimeSpread);
    }
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;

    // R² = 1 - SS_res / SS_tot, computed from residuals around the mean
    // (two-pass, so large offsets do not cancel catastrophically).
    let mean_y = sum_y / n;
    let (mut ss_res, mut ss_tot) = (CompensatedSum::default(), CompensatedSum::default());
    for p in points {
        // Saturating: the client bounds timestamps, but this crate trusts no caller.
        let x = p.t_ms.saturating_sub(origin_ms) as f64 / 1e3;
        let residual = p.value - (slope * x + intercept);
        ss_res.add(residual * residual);
        let deviation = p.value - mean_y;
        ss_tot.add(deviation * deviation);
    }
    let (ss_res, ss_tot) = (ss_res.total(), ss_tot.total());
    let r_squared = if ss_tot > 0.0 {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Ok(LinearFit {
        slope_per_second: slope,
        value_at_origin: intercept,
        origin_ms,
        r_squared,
        samples: points.len(),
    })
}

/// How well a fitted line explains the data; see the module docs for cut-offs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn from_r_squared(r_squared: f64) -> Self {
        if r_squared >= HIGH_CONFIDENCE_R2 {
            Confidence::High
        } else if r_squared >= MEDIUM_CONFIDENCE_R2 {
            Confidence::Medium
        } else {
            Confidence::Low
        }
    }
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Breach when the value rises to or above the threshold (disk usage, latency).
    Above,
    /// Breach when the value falls to or below the threshold (free memory, replicas).
    Below,
}

/// A threshold and how far ahead to look for a crossing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreachRule {
    pub threshold: f64,
    pub direction: Direction,
    pub horizon_hours: f64,
}

impl BreachRule {
    fn is_breached_by(&self, value: f64) -> bool {
        match self.direction {
            Direction::Above => value >= self.threshold,
            Direction::Below => value <= self.threshold,
        }
    }
}

/// Where a series is heading relative to its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outlook {
    /// The latest observed value is already on the bad side of the threshold.
    AlreadyBreached,
    /// The fitted line crosses the threshold within the horizon.
    WillBreach { hours_to_breach: f64 },
    /// Flat, moving away from the threshold, or crossing beyond the horizon.
    Safe,
}

/// The full judgement on one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    pub fit: LinearFit,
    /// Latest observed value.
    pub current: f64,
    pub confidence: Confidence,
    pub outlook: Outlook,
}

impl Assessment {
    /// Whether this deserves a finding: already past the threshold (whatever
    /// the fit quality), or crossing within the horizon with at least medium
    /// confidence.
    pub fn is_reportable(&self) -> bool {
        match self.outlook {
            Outlook::AlreadyBreached => true,
            Outlook::WillBreach { .. } => self.confidence >= Confidence::Medium,
            Outlook::Safe => false,
        }
    }
}

/// Judges a fit against a rule. `current` is the latest observed value and
/// the fit's origin is taken as "now".
pub fn assess(fit: LinearFit, current: f64, rule: &BreachRule) -> Assessment {
    let confidence = fit.confidence();
    let outlook = if rule.is_breached_by(current) {
        Outlook::AlreadyBreached
    } else {
        let slope = fit.slope_per_hour();
        let towards = match rule.direction {
            Direction::Above => slope > 0.0,
            Direction::Below => slope < 0.0,
        };
        if towards {
            // The line may already be past the threshold at "now" while the
            // last sample is not (noise): the crossing is imminent.
            let hours = ((rule.threshold - fit.value_at_origin) / slope).max(0.0);
            if hours <= rule.horizon_hours {
                Outlook::WillBreach {
                    hours_to_breach: hours,
                }
            } else {
                Outlook::Safe
            }
        } else {
            Outlook::Safe
        }
    };
    Assessment {
        fit,
        current,
        confidence,
        outlook,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, step_s: i64, start: f64, per_second: f64) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let t = i as i64 * step_s * 1000;
                Point::new(t, start + per_second * (t as f64 / 1e3))
            })
            .collect()
    }

    #[test]
    fn exact_line_is_recovered() {
        let points = line(61, 60, 50.0, 10.0 / 3600.0);
        let now = points.last().unwrap().t_ms;
        let fit = fit_line(&points, now).unwrap();
        assert!((fit.slope_per_hour() - 10.0).abs() < 1e-9, "{fit:?}");
        assert!((fit.value_at_origin - 60.0).abs() < 1e-9, "{fit:?}");
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
        assert_eq!(fit.confidence(), Confidence::High);
        assert!((fit.value_at(now + 3_600_000) - 70.0).abs() < 1e-9);
    }

    #[test]
    fn large_offsets_stay_accurate() {
        // Unix-epoch-sized timestamps with the origin far away must not lose
        // precision in the slope.
        let base = 1_700_000_000_000_i64;
        let points: Vec<Point> = (0..1000)
            .map(|i| Point::new(base + i * 15_000, 1e9 + i as f64))
            .collect();
        let fit = fit_line(&points, base + 999 * 15_000).unwrap();
        assert!((fit.slope_per_second - 1.0 / 15.0).abs() < 1e-12, "{fit:?}");
    }

    #[test]
    fn noisy_flat_series_has_low_confidence() {
        let points: Vec<Point> = (0..100)
            .map(|i| Point::new(i * 60_000, if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        let fit = fit_line(&points, 99 * 60_000).unwrap();
        assert_eq!(fit.confidence(), Confidence::Low);
        assert!(fit.r_squared < 0.01);
    }

    #[test]
    fn constant_series_is_flat_with_zero_r_squared() {
        let points: Vec<Point> = (0..10).map(|i| Point::new(i * 1000, 5.0)).collect();
        let fit = fit_line(&points, 9000).unwrap();
        assert_eq!(fit.slope_per_second, 0.0);
        assert_eq!(fit.value_at_origin, 5.0);
        assert_eq!(fit.r_squared, 0.0);
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(
            fit_line(&[Point::new(0, 1.0)], 0),
            Err(FitError::TooFewSamples { got: 1, need: 2 })
        );
        let err = fit_line(&[Point::new(0, 1.0), Point::new(1000, f64::NAN)], 0).unwrap_err();
        assert!(matches!(err, FitError::NonFinite { t_ms: 1000, .. }));
        assert_eq!(
            fit_line(&[Point::new(5, 1.0), Point::new(5, 2.0)], 0),
            Err(FitError::NoTimeSpread)
        );
    }

    #[test]
    fn rising_series_breaches_in_two_hours() {
        // 50 → 70 over the last two hours: +10/h, threshold 90 → 2 h.
        let points = line(121, 60, 50.0, 10.0 / 3600.0);
        let now = points.last().unwrap().t_ms;
        let fit = fit_line(&points, now).unwrap();
        let rule = BreachRule {
            threshold: 90.0,
            direction: Direction::Above,
            horizon_hours: 4.0,
        };
        let assessment = assess(fit, 70.0, &rule);
        match assessment.outlook {
            Outlook::WillBreach { hours_to_breach } => {
                assert!((hours_to_breach - 2.0).abs() < 1e-9, "{hours_to_breach}")
            }
            other => panic!("expected a breach, got {other:?}"),
        }
        assert!(assessment.is_reportable());

        let short = BreachRule {
            horizon_hours: 1.5,
            ..rule
        };
        assert_eq!(assess(fit, 70.0, &short).outlook, Outlook::Safe);
    }

    #[test]
    fn falling_series_with_below_rule() {
        let points = line(61, 60, 100.0, -20.0 / 3600.0);
        let now = points.last().unwrap().t_ms;
        let fit = fit_line(&points, now).unwrap();
        let rule = BreachRule {
            threshold: 20.0,
            direction: Direction::Below,
            horizon_hours: 4.0,
        };
        // Now at 80, falling 20/h: 3 h to reach 20.
        match assess(fit, 80.0, &rule).outlook {
            Outlook::WillBreach { hours_to_breach } => {
                assert!((hours_to_breach - 3.0).abs() < 1e-9)
            }
            other => panic!("expected a breach, got {other:?}"),
        }
        // The same fall against an "above" rule is moving away.
        let above = BreachRule {
            direction: Direction::Above,
            threshold: 120.0,
            ..rule
        };
        assert_eq!(assess(fit, 80.0, &above).outlook, Outlook::Safe);
    }

    #[test]
    fn already_breached_is_its_own_case_and_always_reported() {
        let points: Vec<Point> = (0..10)
            .map(|i| Point::new(i * 1000, if i % 2 == 0 { 95.0 } else { 99.0 }))
            .collect();
        let fit = fit_line(&points, 9000).unwrap();
        let rule = BreachRule {
            threshold: 90.0,
            direction: Direction::Above,
            horizon_hours: 4.0,
        };
        let assessment = assess(fit, 99.0, &rule);
        assert_eq!(assessment.outlook, Outlook::AlreadyBreached);
        assert_eq!(assessment.confidence, Confidence::Low);
        assert!(assessment.is_reportable());
    }

    #[test]
    fn low_confidence_crossing_is_not_reported() {
        // A weak upward drift buried in noise.
        let points: Vec<Point> = (0..200)
            .map(|i| {
                let noise = if i % 2 == 0 { 30.0 } else { -30.0 };
                Point::new(i * 60_000, 50.0 + i as f64 * 0.05 + noise)
            })
            .collect();
        let fit = fit_line(&points, 199 * 60_000).unwrap();
        assert_eq!(fit.confidence(), Confidence::Low);
        let rule = BreachRule {
            threshold: 70.0,
            direction: Direction::Above,
            horizon_hours: 48.0,
        };
        let assessment = assess(fit, 60.0, &rule);
        assert!(matches!(assessment.outlook, Outlook::WillBreach { .. }));
        assert!(!assessment.is_reportable());
    }

    #[test]
    fn confidence_cut_offs() {
        assert_eq!(Confidence::from_r_squared(0.8), Confidence::High);
        assert_eq!(Confidence::from_r_squared(0.79), Confidence::Medium);
        assert_eq!(Confidence::from_r_squared(0.5), Confidence::Medium);
        assert_eq!(Confidence::from_r_squared(0.49), Confidence::Low);
    }
}
