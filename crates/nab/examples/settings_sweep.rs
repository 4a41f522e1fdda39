//! Scores a few global detector settings on a NAB directory (no per-file
//! tuning): how the production defaults were chosen.
//! `cargo run --release -p inspector-nab --example settings_sweep -- ../shared/data/nab`

use std::collections::BTreeMap;

use inspector_baseline::{Policy, Thresholds};
use inspector_nab::{PRODUCTION_THRESHOLD, detect, load, score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: settings_sweep <nab dir>")?;
    let series = load(std::path::Path::new(&dir))?;
    for novel_only in [false, true] {
        for cooldown_hours in [6, 24] {
            for warning in [3.0, 4.0] {
                let settings = Policy {
                    cooldown: std::time::Duration::from_secs(cooldown_hours * 3600),
                    thresholds: Thresholds {
                        warning_sigma: warning,
                        critical_sigma: warning.max(5.0),
                        novel_only,
                    },
                    ..Policy::default()
                };
                let scores: BTreeMap<String, Vec<f64>> = series
                    .iter()
                    .map(|s| (s.key.clone(), detect(s, &settings)))
                    .collect();
                let table = score(&series, &scores, PRODUCTION_THRESHOLD);
                let cells: Vec<String> = table
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {:.1} (prod {:.1})",
                            r.profile, r.optimised, r.production
                        )
                    })
                    .collect();
                println!(
                    "novel only {novel_only:>5}, cooldown {cooldown_hours:>2} h, warning {warning}σ: {}",
                    cells.join(" | ")
                );
            }
        }
    }
    Ok(())
}
