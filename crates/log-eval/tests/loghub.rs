//! The engine on the public Loghub-2k benchmark (`loghub-2k/` under the
//! folder named by `PROACTIVE_INSPECTOR_CORPORA`; ignored unless asked).

use std::path::PathBuf;

use inspector_log_eval::{Settings, load_all, score};

fn loghub() -> PathBuf {
    let dir = inspector_test_harness::corpus("loghub-2k");
    assert!(
        dir.join("settings.json").is_file(),
        "{} has no settings.json: not a Loghub-2k folder",
        dir.display()
    );
    dir
}

/// With the benchmark's per-system settings the engine reproduces drain3's
/// grouping accuracy exactly (same algorithm, same tie-breaks).
#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn tuned_settings_reproduce_drain3() {
    let expected = [
        ("Apache", 1.0),
        ("BGL", 0.9625),
        ("HDFS", 0.9975),
        ("Hadoop", 0.9475),
        ("Linux", 0.6900),
        ("OpenSSH", 0.7875),
        ("Spark", 0.9200),
        ("Zookeeper", 0.9665),
    ];
    let datasets = load_all(&loghub()).unwrap();
    assert_eq!(datasets.len(), expected.len());
    for (dataset, (system, ga)) in datasets.iter().zip(expected) {
        assert_eq!(dataset.system, system);
        assert_eq!(dataset.contents.len(), 2000);
        let scored = score(dataset, Settings::Tuned);
        assert!(
            (scored.grouping_accuracy - ga).abs() < 1e-9,
            "{system}: GA {} vs drain3 {ga}",
            scored.grouping_accuracy
        );
    }
}

/// The engine's defaults (built-in masks, no per-system tuning) reach a
/// mean GA of at least 0.90 across the eight systems.
#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn defaults_score_well_without_tuning() {
    let datasets = load_all(&loghub()).unwrap();
    let scores: Vec<f64> = datasets
        .iter()
        .map(|d| score(d, Settings::Default).grouping_accuracy)
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    assert!(mean >= 0.90, "mean default GA {mean:.4}: {scores:?}");
}

/// Leave-one-system-out (choose depth and sim_th on seven systems, score
/// the eighth): every system is held out once, and the held-out mean does
/// not fall below where it stands (0.88; Linux held out is the weak point:
/// the other seven prefer sim_th 0.8, where Linux scores 0.30).
#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn leave_one_system_out() {
    let datasets = load_all(&loghub()).unwrap();
    let held_out = inspector_log_eval::leave_one_out(&datasets);
    let systems: Vec<&str> = held_out.iter().map(|r| r.system.as_str()).collect();
    assert_eq!(
        systems,
        datasets
            .iter()
            .map(|d| d.system.as_str())
            .collect::<Vec<_>>()
    );
    let mean = held_out.iter().map(|r| r.grouping_accuracy).sum::<f64>() / held_out.len() as f64;
    assert!(
        mean >= 0.88,
        "leave-one-out mean GA {mean:.4}: {held_out:?}"
    );
}
