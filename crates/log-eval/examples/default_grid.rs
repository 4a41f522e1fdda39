//! How the engine's recommended `depth`/`sim_th` were chosen: mean GA of the
//! built-in masks over a coarse grid, per system, on a Loghub-layout dir.
//! `cargo run --release -p inspector-log-eval --example default_grid -- ../shared/data/loghub-2k`

use inspector_drain::{Drain, DrainConfig, Masker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: default_grid <loghub dir>")?;
    let datasets = inspector_log_eval::load_all(std::path::Path::new(&dir))?;
    let masker = Masker::builtin();
    let masked: Vec<Vec<String>> = datasets
        .iter()
        .map(|d| {
            d.contents
                .iter()
                .map(|c| masker.mask(c).into_owned())
                .collect()
        })
        .collect();
    let names: Vec<&str> = datasets.iter().map(|d| d.system.as_str()).collect();
    println!("depth sim_th  mean   {}", names.join(" "));
    for depth in [3, 4, 5, 6] {
        for sim_th in [0.4, 0.5, 0.6, 0.7, 0.8] {
            let scores: Vec<f64> = datasets
                .iter()
                .zip(&masked)
                .map(|(dataset, lines)| {
                    let mut drain = Drain::new(DrainConfig {
                        depth,
                        sim_th,
                        ..DrainConfig::default()
                    })
                    .expect("valid grid point");
                    let predicted: Vec<u64> =
                        lines.iter().map(|l| drain.add(l).cluster.id()).collect();
                    inspector_log_eval::grouping_accuracy(&dataset.truth, &predicted)
                })
                .collect();
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            let cells: Vec<String> = scores.iter().map(|s| format!("{s:.3}")).collect();
            println!("{depth:>5} {sim_th:>6}  {mean:.4} {}", cells.join(" "));
        }
    }
    Ok(())
}
