//! Where the NAB points go, per series, at one threshold: which windows are
//! caught (and how early), how many false positives, and what each costs.
//! `cargo run --release -p inspector-nab --example breakdown -- ../shared/data/nab [threshold]`

use inspector_baseline::Policy;
use inspector_nab::{PROFILES, detect, load, raw_score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: breakdown <nab dir> [threshold]")?;
    let threshold: f64 = args.next().map(|t| t.parse()).transpose()?.unwrap_or(0.5);
    let series = load(std::path::Path::new(&dir))?;
    let standard = &PROFILES[0];
    let (mut caught, mut windows, mut false_positives, mut total) = (0, 0, 0, 0.0);
    for s in &series {
        let scores = detect(s, &Policy::default());
        // The same detector without a cooldown: how far each window got.
        let unsuppressed = detect(
            s,
            &Policy {
                cooldown: std::time::Duration::ZERO,
                ..Policy::default()
            },
        );
        let n = s.values.len();
        let probation = ((0.15 * n as f64).floor() as usize).min(750);
        let fired: Vec<usize> = (probation..n).filter(|&i| scores[i] >= threshold).collect();
        let mut cells = Vec::new();
        for &(a, b) in &s.windows {
            windows += 1;
            match fired.iter().find(|&&i| i >= a && i <= b) {
                Some(&i) => {
                    caught += 1;
                    cells.push(format!(
                        "[{a}-{b}] @{:.2}",
                        (i - a) as f64 / (b - a + 1) as f64
                    ));
                }
                None => {
                    let peak = unsuppressed[a..=b].iter().copied().fold(0.0, f64::max);
                    cells.push(format!("[{a}-{b}] MISS (peak {peak:.2})"));
                }
            }
        }
        let fp = fired
            .iter()
            .filter(|&&i| !s.windows.iter().any(|&(a, b)| i >= a && i <= b))
            .count();
        false_positives += fp;
        let raw = raw_score(s, |i| scores[i] >= threshold, standard);
        total += raw;
        println!(
            "{:<58} n={n:<6} prob={probation:<4} fp={fp:<3} raw={raw:+.2} {}",
            s.key,
            cells.join(" ")
        );
    }
    println!(
        "caught {caught}/{windows} windows, {false_positives} false positives, raw {total:+.2}"
    );
    Ok(())
}
