//! Per-series fit + score time on the synthetic series with spikes and a
//! gap each (`synthetic::with_faults`), for the statsmodels comparison.
//! `fit_timing [series=1000]`

use std::time::Instant;

use inspector_baseline::{Baseline, Thresholds, synthetic};

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
    for series in &data {
        let baseline = Baseline::fit(&series[..2016], 288).expect("enough history");
        flagged += usize::from(
            baseline
                .assess(series[2016], 1, Thresholds::default())
                .severity
                .is_some(),
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rust: {count} series in {elapsed:.3} s = {:.1} µs per series ({flagged} flagged)",
        elapsed / count as f64 * 1e6
    );
}
