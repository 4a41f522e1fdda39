//! `inspector logs`: evaluate the Drain engine on benchmark data, or mine
//! templates from a file or stdin.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use inspector_drain::{Drain, DrainConfig, Masker};
use inspector_log_eval::{Settings, SystemScore};
use serde::Serialize;

/// Which settings `logs eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SettingsChoice {
    Tuned,
    Default,
    Both,
}

#[derive(Debug, Serialize)]
struct Table {
    settings: Settings,
    systems: Vec<SystemScore>,
    mean_grouping_accuracy: f64,
    mean_new_template_precision: f64,
    mean_new_template_recall: f64,
}

fn table(datasets: &[inspector_log_eval::Dataset], settings: Settings) -> Table {
    let systems: Vec<SystemScore> = datasets
        .iter()
        .map(|d| inspector_log_eval::score(d, settings))
        .collect();
    let mean = |f: fn(&SystemScore) -> f64| {
        systems.iter().map(f).sum::<f64>() / systems.len().max(1) as f64
    };
    Table {
        settings,
        mean_grouping_accuracy: mean(|s| s.grouping_accuracy),
        mean_new_template_precision: mean(|s| s.new_template_precision),
        mean_new_template_recall: mean(|s| s.new_template_recall),
        systems,
    }
}

/// `inspector logs eval DIR`.
pub fn eval(dir: &Path, choice: SettingsChoice, json: bool, loo: bool) -> anyhow::Result<()> {
    let datasets = inspector_log_eval::load_all(dir)?;
    let chosen: Vec<Settings> = match choice {
        SettingsChoice::Tuned => vec![Settings::Tuned],
        SettingsChoice::Default => vec![Settings::Default],
        SettingsChoice::Both => vec![Settings::Tuned, Settings::Default],
    };
    let tables: Vec<Table> = chosen.into_iter().map(|s| table(&datasets, s)).collect();
    let held_out = loo.then(|| inspector_log_eval::leave_one_out(&datasets));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tables": tables,
                "leave_one_out": held_out,
            }))?
        );
        return Ok(());
    }
    for table in &tables {
        println!(
            "settings: {}",
            match table.settings {
                Settings::Tuned => "tuned (benchmark masks, st, depth; drain3 defaults otherwise)",
                Settings::Default => "default (built-in masks, recommended config)",
            }
        );
        println!(
            "{:<11} {:>6} {:>7} {:>9} {:>9} {:>10} {:>8}",
            "system", "lines", "GA", "clusters", "truth", "new-prec", "new-rec"
        );
        for s in &table.systems {
            println!(
                "{:<11} {:>6} {:>7.4} {:>9} {:>9} {:>10.4} {:>8.4}",
                s.system,
                s.lines,
                s.grouping_accuracy,
                s.clusters,
                s.truth_templates,
                s.new_template_precision,
                s.new_template_recall
            );
        }
        println!(
            "{:<11} {:>6} {:>7.4} {:>9} {:>9} {:>10.4} {:>8.4}\n",
            "mean",
            "",
            table.mean_grouping_accuracy,
            "",
            "",
            table.mean_new_template_precision,
            table.mean_new_template_recall
        );
    }
    if let Some(held_out) = held_out {
        println!(
            "leave one system out (built-in masks; depth and sim_th chosen on the other systems)"
        );
        println!(
            "{:<11} {:>6} {:>7} {:>7}",
            "held out", "depth", "sim_th", "GA"
        );
        for row in &held_out {
            println!(
                "{:<11} {:>6} {:>7.1} {:>7.4}",
                row.system, row.depth, row.sim_th, row.grouping_accuracy
            );
        }
        let mean = held_out.iter().map(|r| r.grouping_accuracy).sum::<f64>()
            / held_out.len().max(1) as f64;
        println!("{:<11} {:>6} {:>7} {:>7.4}", "mean", "", "", mean);
    }
    Ok(())
}

/// `inspector logs mine [FILE|-]`: templates with counts, most frequent first.
pub fn mine(input: Option<&PathBuf>) -> anyhow::Result<()> {
    let reader: Box<dyn std::io::Read + Send> = match input {
        None => Box::new(std::io::stdin()),
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stdin()),
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ),
    };
    let masker = Masker::builtin();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let crate::mine::Mined { lines, drain } = crate::mine::mine(
        reader,
        &masker,
        Drain::new(DrainConfig::recommended())?,
        workers,
        crate::mine::BLOCK,
    )
    .context("reading the log lines")?;
    let mut clusters: Vec<_> = drain.clusters().collect();
    clusters.sort_by(|a, b| b.size().cmp(&a.size()).then(a.id().cmp(&b.id())));
    let print = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        writeln!(out, "{lines} lines, {} templates", clusters.len())?;
        for cluster in &clusters {
            writeln!(out, "{:>8}  {}", cluster.size(), cluster.template())?;
        }
        out.flush()
    };
    match print() {
        // A reader that stopped early (`| head`) is not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("writing the templates")?),
    }
}
