//! The NAB harness on the public corpus (`nab/` under the folder named by
//! `PROACTIVE_INSPECTOR_CORPORA`; ignored unless asked): results layout and scoring run end
//! to end, and the detector finds the labelled jump.

use std::path::PathBuf;

use inspector_nab::{PRODUCTION_THRESHOLD, Policy, backtest, detect, load, read_results, score};

fn nab() -> PathBuf {
    let nab = inspector_test_harness::corpus("nab");
    assert!(
        nab.join("labels/combined_windows.json").is_file(),
        "{} has no labels/combined_windows.json: not a NAB folder",
        nab.display()
    );
    nab
}

#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn backtest_writes_nab_results_and_scores_them() {
    let nab = nab();
    // Two files keep the debug-build test quick: one with anomalies, one without.
    let series: Vec<_> = load(&nab)
        .unwrap()
        .into_iter()
        .filter(|s| {
            s.key == "artificialWithAnomaly/art_daily_jumpsup.csv"
                || s.key == "artificialNoAnomaly/art_daily_small_noise.csv"
        })
        .collect();
    assert_eq!(series.len(), 2);
    let out = tempfile::tempdir().unwrap();
    let mut progress = Vec::new();
    backtest(
        &series,
        &Policy::default(),
        "inspector",
        out.path(),
        |done, total, _| progress.push((done, total)),
    )
    .unwrap();
    assert_eq!(progress, [(1, 2), (2, 2)]);
    let file = out
        .path()
        .join("inspector/artificialWithAnomaly/inspector_art_daily_jumpsup.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("timestamp,value,anomaly_score,label\n"));
    assert_eq!(
        text.lines().count(),
        series
            .iter()
            .find(|s| s.key.contains("jumpsup"))
            .unwrap()
            .values
            .len()
            + 1
    );
    assert!(
        text.lines().skip(1).any(|l| l.ends_with(",1")),
        "labelled window rows"
    );

    let scores = read_results(out.path(), &series).unwrap();
    let table = score(&series, &scores, PRODUCTION_THRESHOLD);
    assert_eq!(table.len(), 3);
    let standard = &table[0];
    assert!(standard.optimised >= standard.production);
    // The jump is found early at the best threshold.
    assert!(standard.optimised > 50.0, "{standard:?}");
}

/// The production policy on the whole shared corpus (35 series, 55 windows),
/// at the production threshold: a guard against regressions in the model
/// or the policy. Measured when written: 66.4, 58.7, 70.9 (before the
/// variance evidence, an hour's median change between samples: 64.9, 57.6,
/// 69.4; before a level
/// had to clear the range by its median's standard error: 64.8, 57.2,
/// 69.2; before a repeat to an earlier outlier's exact value stopped counting as new:
/// 64.5, 56.6, 69.0; two detectors and daily seasons only: 57.6, 51.7, 61.5; one judgement per deviation
/// against a week: 49.7, 33.2, 57.4). Issue 12's bar is standard ≥ 65 and
/// reward_low_FP_rate ≥ 55.
#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn production_policy_on_the_whole_shared_corpus() {
    let nab = nab();
    let series = load(&nab).unwrap();
    assert_eq!(series.len(), 35);
    let scores = series
        .iter()
        .map(|s| (s.key.clone(), detect(s, &Policy::default())))
        .collect();
    let table = score(&series, &scores, PRODUCTION_THRESHOLD);
    let production: Vec<f64> = table.iter().map(|p| p.production).collect();
    assert!(production[0] > 66.0, "{table:?}");
    assert!(production[1] > 58.5, "{table:?}");
    assert!(production[2] > 70.5, "{table:?}");
}
