//! Throughput of the engine on a file of message lines (one per line), as
//! the drain3 comparison script runs it: prints lines/s and writes each
//! line's cluster id and final templates for the identical-clusters check.
//! `throughput <lines.txt> <clusters-out.tsv> [masks: none|builtin] [config: drain3|recommended]`

use std::io::Write;
use std::time::Instant;

use inspector_drain::{Drain, DrainConfig, Masker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args
        .next()
        .ok_or("usage: throughput <lines> <out> [none|builtin] [drain3|recommended]")?;
    let output = args.next().ok_or("missing output path")?;
    let masker = match args.next().as_deref() {
        None | Some("none") => Masker::none(),
        Some("builtin") => Masker::builtin(),
        Some(other) => return Err(format!("unknown masks {other}").into()),
    };
    let config = match args.next().as_deref() {
        None | Some("drain3") => DrainConfig::default(),
        Some("recommended") => DrainConfig::recommended(),
        Some(other) => return Err(format!("unknown config {other}").into()),
    };
    let text = std::fs::read_to_string(&input)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut drain = Drain::new(config)?;
    let mut ids = Vec::with_capacity(lines.len());
    let started = Instant::now();
    if masker.is_empty() {
        for line in &lines {
            ids.push(drain.add(line).cluster.id());
        }
    } else {
        let mut masked = String::new();
        for line in &lines {
            masked.clear();
            masker.mask_into(line, &mut masked);
            ids.push(drain.add(&masked).cluster.id());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "rust: {} lines in {:.3} s = {:.0} lines/s, {} clusters",
        lines.len(),
        elapsed,
        lines.len() as f64 / elapsed,
        drain.cluster_count()
    );
    let mut out = std::io::BufWriter::new(std::fs::File::create(&output)?);
    let mut clusters: Vec<_> = drain.clusters().collect();
    clusters.sort_by_key(|c| c.id());
    for cluster in clusters {
        writeln!(
            out,
            "{}\t{}\t{}",
            cluster.id(),
            cluster.size(),
            cluster.template()
        )?;
    }
    Ok(())
}
