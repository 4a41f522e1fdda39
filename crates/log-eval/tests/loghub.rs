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

/// The engine's defaults (built-in masks, no per-system tuning): mean GA at
/// least 0.95 over the eight systems, none below 0.90, and new-template
/// precision and recall (what becomes a finding) at least 0.95 each.
#[test]
#[ignore = "needs the public corpora: set PROACTIVE_INSPECTOR_CORPORA to a folder with loghub-2k/ and nab/ and run with --include-ignored (see README)"]
fn defaults_score_well_without_tuning() {
    let datasets = load_all(&loghub()).unwrap();
    let scores: Vec<_> = datasets
        .iter()
        .map(|d| score(d, Settings::Default))
        .collect();
    let mean = |f: fn(&inspector_log_eval::SystemScore) -> f64| {
        scores.iter().map(f).sum::<f64>() / scores.len() as f64
    };
    let ga = mean(|s| s.grouping_accuracy);
    assert!(ga >= 0.95, "mean default GA {ga:.4}: {scores:?}");
    for s in &scores {
        assert!(s.grouping_accuracy >= 0.90, "{s:?}");
    }
    let precision = mean(|s| s.new_template_precision);
    let recall = mean(|s| s.new_template_recall);
    assert!(
        precision >= 0.95 && recall >= 0.95,
        "new-template P {precision:.4} R {recall:.4}"
    );
}

/// Leave-one-system-out (choose depth and sim_th on seven systems, score
/// the eighth): every system is held out once, and the held-out mean is at
/// least 0.93 (0.884 before month and weekday names were dates and a
/// `key=value`'s word value a constant, when Linux held out scored 0.30).
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
        mean >= 0.93,
        "leave-one-out mean GA {mean:.4}: {held_out:?}"
    );
}
