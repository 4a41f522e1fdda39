//! Fit + score of 10,000 series × 2,016 points (7 days at 5 minutes) on one
//! core, clean and with spikes and a gap per series (what production sees),
//! through the policy's fit, as the sensor does. Then the cost of the
//! weekly choice: 1,000 series of 21 days (the weekly lookback), with only
//! a daily cycle (the pattern test runs, a daily fit follows) and with
//! weekends (a weekly fit).
//! `compare_statsmodels.sh` beside this file fits the same series with
//! statsmodels' ExponentialSmoothing in the same run and prints the ratio.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inspector_baseline::{Policy, SeriesJudge, synthetic};

const SERIES: usize = 10_000;
const POINTS: usize = 2_016;
const STEP_MS: i64 = 300_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group.sample_size(10);
    let policy = Policy::default();
    for (name, make, series_count, points, period) in [
        (
            "fit_and_score_10k_series_2016_points",
            synthetic::series as fn(usize, usize) -> Vec<f64>,
            SERIES,
            POINTS,
            288,
        ),
        (
            "fit_and_score_10k_series_2016_points_spikes_and_gaps",
            synthetic::with_faults,
            SERIES,
            POINTS,
            288,
        ),
        (
            "fit_and_score_1k_series_21_days_daily_pattern",
            synthetic::with_faults,
            SERIES / 10,
            3 * POINTS,
            288,
        ),
        (
            "fit_and_score_1k_series_21_days_weekly_pattern",
            synthetic::business,
            SERIES / 10,
            3 * POINTS,
            7 * 288,
        ),
    ] {
        group.throughput(Throughput::Elements(series_count as u64));
        let data: Vec<Vec<f64>> = (0..series_count).map(|k| make(k, points + 1)).collect();
        // The season the policy picks is the one this case means to time.
        let chosen = policy
            .fit(&data[0][..points], STEP_MS, None)
            .expect("enough history");
        assert_eq!(chosen.period(), period, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut flagged = 0usize;
                for series in &data {
                    let baseline = policy
                        .fit(&series[..points], STEP_MS, None)
                        .expect("enough history");
                    // Scored as the sensor does: a judge per series.
                    let verdict = SeriesJudge::default().judge(
                        &policy,
                        &baseline,
                        0,
                        STEP_MS,
                        series[points],
                        STEP_MS,
                    );
                    flagged += usize::from(verdict.reported);
                }
                black_box(flagged)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
