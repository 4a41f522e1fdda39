//! How the policy's defaults were chosen: every setting on a small grid of
//! memory × cooldown (and the novelty rule off, for reference) is scored on
//! a NAB directory, then each category is held out in turn, the setting that
//! scores best on the other categories (standard + reward_low_FP_rate) is
//! picked, and the held-out category is scored with it. No per-file tuning.
//! `cargo run --release -p inspector-nab --example settings_sweep -- ../shared/data/nab`

use std::collections::BTreeMap;
use std::time::Duration;

use inspector_baseline::{Policy, Thresholds};
use inspector_nab::{PRODUCTION_THRESHOLD, PROFILES, Series, detect, load, raw_score};

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;

/// Raw score per category and profile at the production threshold.
type Raw = BTreeMap<String, [f64; 3]>;

fn raw_by_category(series: &[Series], policy: &Policy) -> Raw {
    let mut raw = Raw::new();
    for one in series {
        let scores = detect(one, policy);
        let category = one.key.split('/').next().unwrap_or_default().to_string();
        let cell = raw.entry(category).or_default();
        for (k, profile) in PROFILES.iter().enumerate() {
            cell[k] += raw_score(one, |i| scores[i] >= PRODUCTION_THRESHOLD, profile);
        }
    }
    raw
}

/// NAB's normalised score of the categories `keep` selects, per profile.
fn normalised(
    raw: &Raw,
    windows: &BTreeMap<String, usize>,
    keep: impl Fn(&str) -> bool,
) -> [f64; 3] {
    std::array::from_fn(|k| {
        let profile = &PROFILES[k];
        let (sum, count) = raw
            .iter()
            .filter(|(category, _)| keep(category))
            .fold((0.0, 0), |(sum, count), (category, cell)| {
                (sum + cell[k], count + windows[category])
            });
        let null = -profile.fn_ * count as f64;
        100.0 * (sum - null) / (profile.tp * count as f64 - null)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: settings_sweep <nab dir>")?;
    let series = load(std::path::Path::new(&dir))?;
    let mut windows = BTreeMap::<String, usize>::new();
    for one in &series {
        *windows
            .entry(one.key.split('/').next().unwrap_or_default().to_string())
            .or_default() += one.windows.len();
    }
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
        let [s, fp, fn_] = normalised(raw, &windows, |_| true);
        println!("  {name:<28} {s:6.1} {fp:6.1} {fn_:6.1}");
    }
    println!("leave one category out (chosen on the rest by standard + reward_low_FP_rate):");
    let mut held_raw = Raw::new();
    for held in windows.keys() {
        let (name, raw) = results
            .iter()
            .max_by(|a, b| {
                let score = |raw: &Raw| {
                    let [s, fp, _] = normalised(raw, &windows, |c| c != held);
                    s + fp
                };
                score(&a.1).total_cmp(&score(&b.1))
            })
            .ok_or("empty grid")?;
        println!("  {held:<24} chose {name}");
        held_raw.insert(held.clone(), raw[held]);
    }
    let [s, fp, fn_] = normalised(&held_raw, &windows, |_| true);
    println!("  held-out scores: {s:.1} {fp:.1} {fn_:.1}");
    Ok(())
}
