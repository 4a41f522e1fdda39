//! How the policy's defaults were chosen: every setting on a small grid of
//! memory × cooldown (and the novelty rule off, for reference) is scored on
//! a NAB directory, then each category is held out in turn, the setting that
//! scores best on the other categories (standard + reward_low_FP_rate) is
//! picked, and the held-out category is scored with it. No per-file tuning.
//! `cargo run --release -p inspector-nab --example settings_sweep -- ../shared/data/nab`

use std::collections::BTreeMap;
use std::time::Duration;

use inspector_baseline::{Policy, Thresholds};
use inspector_nab::{
    CategoryScore, PRODUCTION_THRESHOLD, PROFILES, Series, by_category, detect, load, normalise,
};

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;

/// Raw scores per category at the production threshold.
type Raw = BTreeMap<String, CategoryScore>;

fn raw_by_category(series: &[Series], policy: &Policy) -> Raw {
    let scores = series
        .iter()
        .map(|one| (one.key.clone(), detect(one, policy)))
        .collect();
    by_category(series, &scores, PRODUCTION_THRESHOLD)
}

/// NAB's normalised score of the categories `keep` selects, per profile.
fn normalised(raw: &Raw, keep: impl Fn(&str) -> bool) -> [f64; 3] {
    std::array::from_fn(|k| {
        let (sum, windows) = raw
            .iter()
            .filter(|(category, _)| keep(category))
            .fold((0.0, 0), |(sum, windows), (_, cell)| {
                (sum + cell.raw[k], windows + cell.windows)
            });
        normalise(sum, windows, &PROFILES[k])
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: settings_sweep <nab dir>")?;
    let series = load(std::path::Path::new(&dir))?;
    let mut grid: Vec<(String, Policy)> = Vec::new();
    for memory_days in [7, 14, 28, 56] {
        for cooldown_hours in [6, 12, 24] {
            grid.push((
                format!("memory {memory_days:>2} d, cooldown {cooldown_hours:>2} h"),
                Policy {
                    memory: Duration::from_secs(memory_days * DAY),
                    cooldown: Duration::from_secs(cooldown_hours * HOUR),
                    ..Policy::default()
                },
            ));
        }
    }
    grid.push((
        "novelty rule off".into(),
        Policy {
            thresholds: Thresholds {
                novel_only: false,
                ..Thresholds::default()
            },
            ..Policy::default()
        },
    ));
    let results: Vec<(String, Raw)> = grid
        .iter()
        .map(|(name, policy)| (name.clone(), raw_by_category(&series, policy)))
        .collect();
    println!("all categories (standard, reward_low_FP_rate, reward_low_FN_rate):");
    for (name, raw) in &results {
        let [s, fp, fn_] = normalised(raw, |_| true);
        println!("  {name:<28} {s:6.1} {fp:6.1} {fn_:6.1}");
    }
    println!("leave one category out (chosen on the rest by standard + reward_low_FP_rate):");
    let categories: Vec<String> = results
        .first()
        .map(|(_, raw)| raw.keys().cloned().collect())
        .unwrap_or_default();
    let mut held_raw = Raw::new();
    for held in &categories {
        let (name, raw) = results
            .iter()
            .max_by(|a, b| {
                let score = |raw: &Raw| {
                    let [s, fp, _] = normalised(raw, |c| c != held);
                    s + fp
                };
                score(&a.1).total_cmp(&score(&b.1))
            })
            .ok_or("empty grid")?;
        println!("  {held:<24} chose {name}");
        held_raw.insert(held.clone(), raw[held]);
    }
    let [s, fp, fn_] = normalised(&held_raw, |_| true);
    println!("  held-out scores: {s:.1} {fp:.1} {fn_:.1}");
    Ok(())
}
