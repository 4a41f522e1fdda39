//! Prints every reported row of the named NAB files: where, σ, the evidence,
//! and whether it is in a window (for reading where the points go). With
//! `NEAR=0.45` it also prints the rows scoring at least that (near misses).
//! `cargo run --release -p inspector-nab --example trace -- ../shared/data/nab nyc_taxi`

use inspector_baseline::{Policy, StreamingDetector};
use inspector_nab::{load, step_seconds};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: trace <nab dir> <name part>")?;
    let part = args.next().unwrap_or_default();
    for s in load(std::path::Path::new(&dir))? {
        if !s.key.contains(&part) {
            continue;
        }
        println!("{} windows {:?}", s.key, s.windows);
        let mut detector =
            StreamingDetector::new(Policy::default(), step_seconds(&s.timestamps) * 1000);
        for (i, v) in s.values.iter().enumerate() {
            let Some(o) = detector.observe(*v) else {
                continue;
            };
            let near = std::env::var("NEAR")
                .ok()
                .and_then(|v| v.parse::<f64>().ok());
            if o.reported || near.is_some_and(|n| o.score >= n) {
                let a = o.assessment;
                let inside = s.windows.iter().any(|&(x, y)| i >= x && i <= y);
                println!(
                    "  {i:>6} {} value {v:.2} expected {:.2} ± {:.2} σ {:+.1} {:?} {}",
                    s.raw_timestamps[i],
                    a.expected,
                    a.std,
                    a.sigma,
                    o.evidence,
                    if inside { "IN" } else { "" }
                );
            }
        }
    }
    Ok(())
}
