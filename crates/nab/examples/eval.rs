//! Scores the production policy on a NAB directory, per profile and per
//! category (for leave-one-category-out comparisons).
//! `cargo run --release -p inspector-nab --example eval -- ../shared/data/nab`

use std::collections::BTreeMap;

use inspector_baseline::Policy;
use inspector_nab::{PRODUCTION_THRESHOLD, PROFILES, detect, load, normalised, raw_score, score};

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
    let mut categories: Vec<&str> = series
        .iter()
        .map(|s| s.key.split('/').next().unwrap_or_default())
        .collect();
    categories.dedup();
    for category in categories {
        let held: Vec<_> = series
            .iter()
            .filter(|s| s.key.starts_with(category))
            .cloned()
            .collect();
        let cells: Vec<String> = PROFILES
            .iter()
            .map(|p| {
                let raw: f64 = held
                    .iter()
                    .map(|s| {
                        let v = &scores[&s.key];
                        raw_score(s, |i| v[i] >= PRODUCTION_THRESHOLD, p)
                    })
                    .sum();
                format!(
                    "{:6.1} (raw {raw:+.2})",
                    normalised(&held, &scores, PRODUCTION_THRESHOLD, p)
                )
            })
            .collect();
        println!("  {category:<24} {}", cells.join(" "));
    }
    Ok(())
}
