//! The template-growth workload as whole runs, for the side-by-side with
//! drain3 (`benches/growth_drain3.py`): for each template count, fills an
//! engine (recommended config), times a window of 20,000 lines that create
//! and repeat templates (best of three, each on a copy of the filled
//! engine), and writes the templates and the window's first 2,000 lines for
//! drain3 (which needs minutes for those at 50,000 templates).
//! `growth <out dir> [template counts...]` (default 500 50000)

use std::io::Write;
use std::time::Instant;

use inspector_drain::{Drain, DrainConfig};
use inspector_log_eval::growing;

const WINDOW: u64 = 20_000;

/// Lines of the window written for drain3.
const DRAIN3_WINDOW: usize = 2_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().ok_or("usage: growth <out dir> [counts...]")?);
    let mut counts: Vec<u64> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if counts.is_empty() {
        counts = vec![500, 50_000];
    }
    std::fs::create_dir_all(&out)?;
    for templates in counts {
        let mut engine = Drain::new(DrainConfig::recommended())?;
        for line in growing::prefill(templates) {
            engine.add(&line);
        }
        let lines = growing::window(templates, WINDOW);
        let mut elapsed = f64::INFINITY;
        for _ in 0..3 {
            let mut copy = engine.clone();
            let started = Instant::now();
            for line in &lines {
                std::hint::black_box(copy.add(line).cluster.id());
            }
            elapsed = elapsed.min(started.elapsed().as_secs_f64());
        }
        println!(
            "rust: {templates} templates: {WINDOW} lines in {elapsed:.4} s = {:.0} lines/s",
            WINDOW as f64 / elapsed
        );
        let mut file = std::io::BufWriter::new(std::fs::File::create(
            out.join(format!("templates-{templates}.txt")),
        )?);
        for t in 0..templates {
            writeln!(file, "{}", growing::template_text(t))?;
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(
            out.join(format!("window-{templates}.txt")),
        )?);
        for line in lines.iter().take(DRAIN3_WINDOW) {
            writeln!(file, "{line}")?;
        }
    }
    Ok(())
}
