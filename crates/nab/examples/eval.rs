//! Scores the production policy on a NAB directory, per profile and per
//! category (for leave-one-category-out comparisons).
//! `cargo run --release -p inspector-nab --example eval -- ../shared/data/nab`

use std::collections::BTreeMap;

use inspector_baseline::Policy;
use inspector_nab::{PRODUCTION_THRESHOLD, PROFILES, by_category, detect, load, normalise, score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: eval <nab dir>")?;
    let series = load(std::path::Path::new(&dir))?;
    let policy = Policy::default();
    let scores: BTreeMap<String, Vec<f64>> = series
        .iter()
        .map(|s| (s.key.clone(), detect(s, &policy)))
        .collect();
    for row in score(&series, &scores, PRODUCTION_THRESHOLD) {
        println!(
            "{:<20} production {:6.1}   optimised {:6.1} at {:.3}",
            row.profile, row.production, row.optimised, row.optimised_threshold
        );
    }
    for (category, cell) in by_category(&series, &scores, PRODUCTION_THRESHOLD) {
        let cells: Vec<String> = PROFILES
            .iter()
            .zip(cell.raw)
            .map(|(profile, raw)| {
                format!(
                    "{:6.1} (raw {raw:+.2})",
                    normalise(raw, cell.windows, profile)
                )
            })
            .collect();
        println!("  {category:<24} {}", cells.join(" "));
    }
    Ok(())
}
