//! `inspector baseline`: replay the Numenta Anomaly Benchmark through the
//! baseline detector and score the results with NAB's rules.

use std::io::Write;
use std::path::Path;

use inspector_nab::{PRODUCTION_THRESHOLD, Policy};

/// `inspector baseline backtest --nab DIR --out DIR`.
pub fn backtest(nab: &Path, out: &Path, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.contains('_'),
        "--name must not contain an underscore (NAB's file naming)"
    );
    let series = inspector_nab::load(nab)?;
    let started = std::time::Instant::now();
    inspector_nab::backtest(
        &series,
        &Policy::default(),
        name,
        out,
        |done, total, key| {
            eprint!("\r[{done:>3}/{total}] {key:<60}");
            let _ = std::io::stderr().flush();
        },
    )?;
    eprintln!(
        "\rreplayed {} series in {:.1} s; results in {}",
        series.len(),
        started.elapsed().as_secs_f64(),
        out.join(name).display()
    );
    Ok(())
}

/// `inspector baseline nab-score --nab DIR --results DIR [--json]`.
pub fn nab_score(nab: &Path, results: &Path, json: bool) -> anyhow::Result<()> {
    let series = inspector_nab::load(nab)?;
    let scores = inspector_nab::read_results(results, &series)?;
    let table = inspector_nab::score(&series, &scores, PRODUCTION_THRESHOLD);
    if json {
        println!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(());
    }
    let windows: usize = series.iter().map(|s| s.windows.len()).sum();
    println!("{} series, {windows} anomaly windows", series.len());
    println!(
        "{:<20} {:>10} {:>10} {:>11} {:>10}",
        "profile", "optimised", "threshold", "production", "threshold"
    );
    for row in table {
        println!(
            "{:<20} {:>10.1} {:>10.3} {:>11.1} {:>10.3}",
            row.profile,
            row.optimised,
            row.optimised_threshold,
            row.production,
            row.production_threshold
        );
    }
    Ok(())
}
