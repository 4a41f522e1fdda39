//! How the engine's recommended `depth`/`sim_th` were chosen: mean GA of the
//! built-in masks over a coarse grid, per system, on a Loghub-layout dir.
//! `cargo run --release -p inspector-log-eval --example default_grid -- ../shared/data/loghub-2k`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: default_grid <loghub dir>")?;
    let datasets = inspector_log_eval::load_all(std::path::Path::new(&dir))?;
    let names: Vec<&str> = datasets.iter().map(|d| d.system.as_str()).collect();
    println!("depth sim_th  mean   {}", names.join(" "));
    let (points, scores) = inspector_log_eval::grid_scores(&datasets);
    for ((depth, sim_th), scores) in points.iter().zip(&scores) {
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let cells: Vec<String> = scores.iter().map(|s| format!("{s:.3}")).collect();
        println!("{depth:>5} {sim_th:>6}  {mean:.4} {}", cells.join(" "));
    }
    Ok(())
}
