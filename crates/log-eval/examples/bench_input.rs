//! Writes the benchmark input: the message part of every line of every
//! system in a Loghub-layout directory, repeated until `count` lines.
//! `bench_input <loghub dir> <out.txt> [count=1000000]`

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: bench_input <dir> <out> [count]")?;
    let out = args.next().ok_or("missing output path")?;
    let count: usize = args.next().map_or(Ok(1_000_000), |c| c.parse())?;
    let contents = inspector_log_eval::benchmark_lines(std::path::Path::new(&dir), count)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    for line in &contents {
        writeln!(file, "{line}")?;
    }
    println!("wrote {} lines to {out}", contents.len());
    Ok(())
}
