//! Where a system's grouping goes wrong with the default settings: each
//! true template split over several clusters or sharing one with another,
//! with a masked example line of each cluster.
//! `cargo run -p inspector-log-eval --example errors -- ../shared/data/loghub-2k Linux [sim_th]`

use std::collections::BTreeMap;

use inspector_log_eval::{Settings, engine_for};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: errors <loghub dir> <system>")?;
    let system = args.next().ok_or("usage: errors <loghub dir> <system>")?;
    let datasets = inspector_log_eval::load_all(std::path::Path::new(&dir))?;
    let dataset = datasets
        .iter()
        .find(|d| d.system == system)
        .ok_or("no such system")?;
    let (mut drain, masker) = engine_for(dataset, Settings::Default);
    // Optional: another sim_th, to see what a grid point splits or merges.
    if let Some(sim_th) = args.next() {
        drain = inspector_drain::Drain::new(inspector_drain::DrainConfig {
            sim_th: sim_th.parse()?,
            ..drain.config().clone()
        })?;
    }
    let mut by_truth: BTreeMap<&str, BTreeMap<u64, (usize, String)>> = BTreeMap::new();
    let mut by_cluster: BTreeMap<u64, BTreeMap<&str, usize>> = BTreeMap::new();
    for (content, truth) in dataset.contents.iter().zip(&dataset.truth) {
        let masked = masker.mask(content).into_owned();
        let id = drain.add(&masked).cluster.id();
        let entry = by_truth
            .entry(truth)
            .or_default()
            .entry(id)
            .or_insert((0, masked));
        entry.0 += 1;
        *by_cluster.entry(id).or_default().entry(truth).or_default() += 1;
    }
    for (truth, clusters) in &by_truth {
        let merged = clusters.keys().any(|id| by_cluster[id].len() > 1);
        if clusters.len() > 1 || merged {
            let lines: usize = clusters.values().map(|(n, _)| n).sum();
            println!(
                "{truth} ({lines} lines, {} clusters{}):",
                clusters.len(),
                if merged { ", merged" } else { "" }
            );
            for (id, (n, example)) in clusters.iter().take(6) {
                println!("  #{id} x{n}: {example}");
            }
        }
    }
    Ok(())
}
