//! Per-series fit + score time on the synthetic series with spikes and a
//! gap each (`synthetic::with_faults`), for the statsmodels comparison.
//! `fit_timing [series=1000]`

use std::time::Instant;

use inspector_baseline::{Policy, SeriesJudge, synthetic};

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let data: Vec<Vec<f64>> = (0..count)
        .map(|k| synthetic::with_faults(k, 2017))
        .collect();
    let started = Instant::now();
    let mut flagged = 0;
    let policy = Policy::default();
    for series in &data {
        let baseline = policy
            .fit(&series[..2016], 300_000, None)
            .expect("enough history");
        // Scored as the sensor does: a judge per series.
        let verdict =
            SeriesJudge::default().judge(&policy, &baseline, 0, 300_000, series[2016], 300_000);
        flagged += usize::from(verdict.reported);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rust: {count} series in {elapsed:.3} s = {:.1} µs per series ({flagged} flagged)",
        elapsed / count as f64 * 1e6
    );
}
