//! Fit + score of 10,000 series × 2,016 points (7 days at 5 minutes) on one
//! core, clean and with spikes and a gap per series (what production sees).
//! `compare_statsmodels.sh` beside this file fits the same series with
//! statsmodels' ExponentialSmoothing in the same run and prints the ratio.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inspector_baseline::{Baseline, Policy, SeriesJudge, synthetic};

const SERIES: usize = 10_000;
const POINTS: usize = 2_016;
const STEP_MS: i64 = 300_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.sample_size(10);
    let policy = Policy::default();
    for (name, make) in [
        (
            "fit_and_score_10k_series_2016_points",
            synthetic::series as fn(usize, usize) -> Vec<f64>,
        ),
        (
            "fit_and_score_10k_series_2016_points_spikes_and_gaps",
            synthetic::with_faults,
        ),
    ] {
        let data: Vec<Vec<f64>> = (0..SERIES).map(|k| make(k, POINTS + 1)).collect();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut flagged = 0usize;
                for series in &data {
                    let baseline = Baseline::fit(&series[..POINTS], 288).expect("enough history");
                    // Scored as the sensor does: a judge per series.
                    let verdict = SeriesJudge::default().judge(
                        &policy,
                        &baseline,
                        0,
                        STEP_MS,
                        series[POINTS],
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
