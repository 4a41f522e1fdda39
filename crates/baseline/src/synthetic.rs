//! Deterministic synthetic series for benchmarks, the statsmodels
//! comparison (the Python script computes the same formulas of [`series`])
//! and the policy's tests (the sensor/replay equivalence among them).

/// Series `k`: 7 days at 5 minutes (2,016 points): a daily cycle whose
/// amplitude and phase depend on `k`, a slow trend, and jitter in [-1, 1].
pub fn series(k: usize, points: usize) -> Vec<f64> {
    let amplitude = 10.0 + (k % 17) as f64;
    let phase = (k % 288) as f64;
    (0..points)
        .map(|i| {
            let daily = (((i as f64) + phase) / 288.0 * std::f64::consts::TAU).sin();
            let x = ((i * 7 + k * 13) as f64 * 12.9898).sin() * 43_758.545_3;
            100.0 + amplitude * daily + 0.001 * i as f64 + (x - x.floor() - 0.5) * 2.0
        })
        .collect()
}

/// [`series`] sampled hourly (every twelfth point), `days` long: a series
/// whose hour holds one sample.
pub fn hourly(k: usize, days: usize) -> Vec<f64> {
    series(k, days * 288).into_iter().step_by(12).collect()
}

/// [`series`] (`days` long) that has done it all before: spikes of ±15 a
/// day on days 3-7 and an hour sat +12 off on day 4, so that no single
/// value of ±6 and no hour of them is news for it.
pub fn seasoned(k: usize, days: usize) -> Vec<f64> {
    let mut values = series(k, days * 288);
    for day in 3..days.min(8) {
        values[day * 288 + 50] += 15.0;
        values[day * 288 + 170] -= 15.0;
    }
    if let Some(hour) = values.get_mut(4 * 288 + 200..4 * 288 + 212) {
        hour.iter_mut().for_each(|value| *value += 12.0);
    }
    values
}

/// Adds +6, −6, 0 in turn to `values[at..at + len]`: a series flapping
/// between values it has reached before.
pub fn flap(values: &mut [f64], at: usize, len: usize) {
    for (k, value) in values[at..at + len].iter_mut().enumerate() {
        *value += [6.0, -6.0, 0.0][k % 3];
    }
}

/// [`series`] as production sees it: spikes of +40 (about one in 997
/// points) and an hour-long gap (12 missing points, NaN) per series, so
/// the clipping, robust scale and gap handling are part of what is timed.
pub fn with_faults(k: usize, points: usize) -> Vec<f64> {
    let mut values = series(k, points);
    for (i, value) in values.iter_mut().enumerate() {
        if (i * 31 + k * 17).is_multiple_of(997) {
            *value += 40.0;
        }
    }
    let gap = (k * 53) % points.saturating_sub(12).max(1);
    for value in values.iter_mut().skip(gap).take(12) {
        *value = f64::NAN;
    }
    values
}

/// [`series`] as business traffic: 30 lower on the fifth and sixth day of
/// each week (a weekend), so last week predicts it better than yesterday.
pub fn business(k: usize, points: usize) -> Vec<f64> {
    let mut values = series(k, points);
    for (i, value) in values.iter_mut().enumerate() {
        if (i / 288) % 7 >= 5 {
            *value -= 30.0;
        }
    }
    values
}
