//! Resident memory of the engine holding N distinct templates (default 10,000).
//! `memory [templates]`

use inspector_drain::{Drain, DrainConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let templates: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let before = rss_kib();
    let mut drain = Drain::new(DrainConfig::recommended()).expect("valid config");
    // Distinct templates: words that never match each other, ~10 tokens each,
    // each seen a few times with a varying number.
    for round in 0..3 {
        for t in 0..templates {
            let line = format!(
                "service{t} component alpha{t} beta{t} failed gamma{t} delta{t} after {round} retries epsilon{t}"
            );
            drain.add(&line);
        }
    }
    let after = rss_kib();
    println!(
        "memory: {} templates, process RSS {:.1} MB ({:.1} MB for the engine), snapshot {:.1} MB",
        drain.cluster_count(),
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        drain.snapshot().len() as f64 / 1e6
    );
}
