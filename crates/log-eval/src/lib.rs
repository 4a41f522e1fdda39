//! Scoring the Drain engine on log-parsing benchmark data in the Loghub
//! layout: `<dir>/<S>/<S>_2k.log`, `<dir>/<S>/<S>_2k.log_structured.csv`
//! (ground truth `EventId` per line) and `<dir>/settings.json` (per system:
//! `header_regex`, tuned `regex` masks, `st`, `depth`).
//!
//! Grouping accuracy (GA): a line is correct when the set of lines in its
//! predicted cluster equals the set of lines sharing its ground-truth
//! `EventId`; GA = correct lines / all lines. New-template detection: replay
//! in order; a ground-truth new line is the first occurrence of its EventId,
//! a predicted one is a line that created a cluster.

pub mod growing;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inspector_drain::{Change, ClusterId, Drain, DrainConfig, MaskRule, Masker};
use regex::Regex;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn format_error(path: &Path, message: impl Into<String>) -> EvalError {
    EvalError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// One system's entry in `settings.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemSettings {
    pub header_regex: String,
    #[serde(default)]
    pub regex: Vec<String>,
    pub st: f64,
    pub depth: usize,
}

/// One system's lines and ground truth.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub system: String,
    pub settings: SystemSettings,
    /// Message part of each line (after the header split).
    pub contents: Vec<String>,
    /// Ground-truth EventId of each line.
    pub truth: Vec<String>,
}

/// Which engine configuration to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Settings {
    /// The benchmark's per-system masks (`<*>`), `st` and `depth`;
    /// everything else at drain3's defaults.
    Tuned,
    /// The engine's own defaults: built-in masks, [`DrainConfig::recommended`].
    Default,
}

/// Scores of one system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemScore {
    pub system: String,
    pub lines: usize,
    pub grouping_accuracy: f64,
    pub clusters: usize,
    pub truth_templates: usize,
    pub new_template_precision: f64,
    pub new_template_recall: f64,
}

/// Lists the systems of a directory: sub-folders with a `<S>_2k.log`, in
/// name order, restricted to those in `settings.json`.
pub fn load_all(dir: &Path) -> Result<Vec<Dataset>, EvalError> {
    let settings_path = dir.join("settings.json");
    let text = std::fs::read_to_string(&settings_path).map_err(io(&settings_path))?;
    let settings: BTreeMap<String, SystemSettings> =
        serde_json::from_str(&text).map_err(|e| format_error(&settings_path, e.to_string()))?;
    let mut datasets = Vec::new();
    for (system, settings) in settings {
        if dir.join(&system).join(format!("{system}_2k.log")).is_file() {
            datasets.push(load(dir, &system, settings)?);
        }
    }
    if datasets.is_empty() {
        return Err(format_error(
            dir,
            "no system folder with <S>/<S>_2k.log found",
        ));
    }
    Ok(datasets)
}

/// Loads one system.
pub fn load(dir: &Path, system: &str, settings: SystemSettings) -> Result<Dataset, EvalError> {
    let log_path = dir.join(system).join(format!("{system}_2k.log"));
    let csv_path = dir
        .join(system)
        .join(format!("{system}_2k.log_structured.csv"));
    let header = Regex::new(&settings.header_regex)
        .map_err(|e| format_error(&log_path, format!("header_regex: {e}")))?;
    let raw = std::fs::read(&log_path).map_err(io(&log_path))?;
    let text = String::from_utf8_lossy(&raw);
    let contents: Vec<String> = text
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .map(|line| split_header(&header, line).to_string())
        .collect();

    let mut reader =
        csv::Reader::from_path(&csv_path).map_err(|e| format_error(&csv_path, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| format_error(&csv_path, e.to_string()))?
        .clone();
    let event_column = headers
        .iter()
        .position(|h| h == "EventId")
        .ok_or_else(|| format_error(&csv_path, "no EventId column"))?;
    let truth = reader
        .records()
        .map(|record| {
            record
                .map_err(|e| format_error(&csv_path, e.to_string()))
                .map(|r| r.get(event_column).unwrap_or_default().to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    if truth.len() != contents.len() {
        return Err(format_error(
            &csv_path,
            format!(
                "{} ground-truth rows for {} log lines",
                truth.len(),
                contents.len()
            ),
        ));
    }
    Ok(Dataset {
        system: system.to_string(),
        settings,
        contents,
        truth,
    })
}

/// The `Content` group of `header` on `line`, or the whole line when the
/// header does not match.
pub fn split_header<'a>(header: &Regex, line: &'a str) -> &'a str {
    header
        .captures(line)
        .and_then(|c| c.name("Content"))
        .map_or(line, |m| m.as_str())
}

/// Every system's message lines, in system order, repeated until `count`
/// lines: the throughput benchmark's input.
pub fn benchmark_lines(dir: &Path, count: usize) -> Result<Vec<String>, EvalError> {
    let all: Vec<String> = load_all(dir)?
        .into_iter()
        .flat_map(|d| d.contents)
        .collect();
    Ok(all.iter().cycle().take(count).cloned().collect())
}

/// The engine and masks for `settings` on `dataset`.
pub fn engine_for(dataset: &Dataset, settings: Settings) -> (Drain, Masker) {
    match settings {
        Settings::Tuned => {
            let rules: Vec<MaskRule> = dataset
                .settings
                .regex
                .iter()
                .map(|pattern| MaskRule::new(pattern.clone(), "*"))
                .collect();
            let config = DrainConfig {
                depth: dataset.settings.depth,
                sim_th: dataset.settings.st,
                ..DrainConfig::default()
            };
            (
                Drain::new(config).expect("benchmark settings are valid"),
                Masker::new(&rules).expect("benchmark masks compile"),
            )
        }
        Settings::Default => (
            Drain::new(DrainConfig::recommended()).expect("recommended config is valid"),
            Masker::builtin(),
        ),
    }
}

/// Runs the engine over the dataset in order and scores it.
pub fn score(dataset: &Dataset, settings: Settings) -> SystemScore {
    let (mut drain, masker) = engine_for(dataset, settings);
    let mut predicted = Vec::with_capacity(dataset.contents.len());
    let mut created = Vec::with_capacity(dataset.contents.len());
    for content in &dataset.contents {
        let added = drain.add(&masker.mask(content));
        predicted.push(added.cluster.id());
        created.push(added.change == Change::Created);
    }
    let (precision, recall) = new_template_precision_recall(&dataset.truth, &created);
    SystemScore {
        system: dataset.system.clone(),
        lines: dataset.contents.len(),
        grouping_accuracy: grouping_accuracy(&dataset.truth, &predicted),
        clusters: predicted.iter().collect::<FxHashSet<_>>().len(),
        truth_templates: dataset.truth.iter().collect::<FxHashSet<_>>().len(),
        new_template_precision: precision,
        new_template_recall: recall,
    }
}

/// The grid the default `depth` and `sim_th` are chosen on.
pub const DEPTH_GRID: [usize; 4] = [3, 4, 5, 6];
pub const SIM_TH_GRID: [f64; 6] = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// One held-out system of a leave-one-system-out run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    pub system: String,
    /// Chosen on the other systems (best mean GA there).
    pub depth: usize,
    pub sim_th: f64,
    /// GA of the held-out system at the chosen point.
    pub grouping_accuracy: f64,
}

/// GA of every dataset at every grid point (built-in masks), indexed
/// `[point][dataset]`, with the points (depth, sim_th).
pub fn grid_scores(datasets: &[Dataset]) -> (Vec<(usize, f64)>, Vec<Vec<f64>>) {
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
    let points: Vec<(usize, f64)> = DEPTH_GRID
        .iter()
        .flat_map(|&depth| SIM_TH_GRID.iter().map(move |&sim_th| (depth, sim_th)))
        .collect();
    let scores = points
        .iter()
        .map(|&(depth, sim_th)| {
            datasets
                .iter()
                .zip(&masked)
                .map(|(dataset, lines)| {
                    let mut drain = Drain::new(DrainConfig {
                        depth,
                        sim_th,
                        ..DrainConfig::recommended()
                    })
                    .expect("grid points are valid");
                    let predicted: Vec<ClusterId> =
                        lines.iter().map(|l| drain.add(l).cluster.id()).collect();
                    grouping_accuracy(&dataset.truth, &predicted)
                })
                .collect()
        })
        .collect();
    (points, scores)
}

/// Leave-one-system-out: for each system, the grid point with the best mean
/// GA on the others, and the held-out system's GA there. What a default
/// chosen on these systems can be expected to score on one it has not seen.
pub fn leave_one_out(datasets: &[Dataset]) -> Vec<HeldOut> {
    let (points, scores) = grid_scores(datasets);
    (0..datasets.len())
        .map(|held| {
            let mean_without = |row: &Vec<f64>| {
                row.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != held)
                    .map(|(_, ga)| ga)
                    .sum::<f64>()
            };
            // Ties go to the first point (the grid's order).
            let mut best = 0;
            for (i, row) in scores.iter().enumerate() {
                if mean_without(row) > mean_without(&scores[best]) + 1e-12 {
                    best = i;
                }
            }
            HeldOut {
                system: datasets[held].system.clone(),
                depth: points[best].0,
                sim_th: points[best].1,
                grouping_accuracy: scores[best][held],
            }
        })
        .collect()
}

/// Grouping accuracy of `predicted` cluster ids against `truth` event ids.
pub fn grouping_accuracy(truth: &[String], predicted: &[ClusterId]) -> f64 {
    assert_eq!(truth.len(), predicted.len());
    if truth.is_empty() {
        return 1.0;
    }
    let mut truth_sizes: FxHashMap<&str, usize> = FxHashMap::default();
    for event in truth {
        *truth_sizes.entry(event.as_str()).or_default() += 1;
    }
    let mut members: FxHashMap<ClusterId, Vec<usize>> = FxHashMap::default();
    for (line, cluster) in predicted.iter().enumerate() {
        members.entry(*cluster).or_default().push(line);
    }
    let correct: usize = members
        .values()
        .filter(|lines| {
            let event = truth[lines[0]].as_str();
            lines.iter().all(|&l| truth[l] == event) && truth_sizes[event] == lines.len()
        })
        .map(Vec::len)
        .sum();
    correct as f64 / truth.len() as f64
}

/// Precision and recall of `created` flags against first occurrences of
/// each ground-truth event.
pub fn new_template_precision_recall(truth: &[String], created: &[bool]) -> (f64, f64) {
    let mut seen = FxHashSet::default();
    let (mut true_positive, mut predicted, mut actual) = (0usize, 0usize, 0usize);
    for (event, &created) in truth.iter().zip(created) {
        let first = seen.insert(event.as_str());
        actual += usize::from(first);
        predicted += usize::from(created);
        true_positive += usize::from(first && created);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    (
        ratio(true_positive, predicted),
        ratio(true_positive, actual),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grouping_accuracy_counts_exact_groups_only() {
        let truth = strings(&["a", "a", "b", "b", "c"]);
        assert_eq!(grouping_accuracy(&truth, &[1, 1, 2, 2, 3]), 1.0);
        // b split in two: its lines are wrong; a and c right.
        assert_eq!(grouping_accuracy(&truth, &[1, 1, 2, 4, 3]), 0.6);
        // a and c merged: both wrong.
        assert_eq!(grouping_accuracy(&truth, &[1, 1, 2, 2, 1]), 0.4);
    }

    #[test]
    fn precision_recall_of_new_templates() {
        let truth = strings(&["a", "a", "b", "c", "b"]);
        // Created at lines 0 (right), 1 (wrong), 3 (right); missed b at 2.
        let (precision, recall) =
            new_template_precision_recall(&truth, &[true, true, false, true, false]);
        assert!((precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((recall - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn header_split() {
        let header = Regex::new(r"^(?P<Date>\S+)\s+(?P<Level>\S+)\s+(?P<Content>.*?)$").unwrap();
        assert_eq!(
            split_header(&header, "2024 INFO hello world"),
            "hello world"
        );
        assert_eq!(split_header(&header, "nohead"), "nohead");
    }
}
