//! `raw_score` against numbers produced by NAB's own scorer
//! (numenta/NAB `run.py --score`): the rows of `fixtures/nab_scores.csv` are
//! copied from `results/twitterADVec/twitterADVec_<profile>_scores.csv`.
//! twitterADVec's anomaly scores are 0 or 1, so each file's detections are
//! a few rows, read off its results file
//! (`results/twitterADVec/<category>/twitterADVec_<file>.csv`):
//! - `realTraffic/speed_7578.csv`: 1,127 rows, four windows of 29 rows each
//!   after the probation; the first two missed; detections at 2015-09-16
//!   14:29 (row 17 of the third window) and 17:10 (row 14 of the fourth),
//!   whose S(t) NAB printed as 0.7862241558438429 and 0.8716042063328711;
//!   the third window ends seven rows before the fourth begins.
//! - `artificialNoAnomaly/art_daily_no_noise.csv`: 4,032 rows, no window,
//!   eight detections after the probation.
//!
//! The row counts (TP, TN, FP, FN: rows after the probation) are checked
//! too, so a miscounted structure fails rather than passes by luck.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use inspector_nab::{PROFILES, Profile, Series, raw_score};

fn series(rows: usize, windows: Vec<(usize, usize)>) -> Series {
    let t0 = NaiveDateTime::parse_from_str("2015-09-08 11:39:00", "%Y-%m-%d %H:%M:%S").unwrap();
    let timestamps: Vec<NaiveDateTime> = (0..rows)
        .map(|i| t0 + chrono::Duration::minutes(5 * i as i64))
        .collect();
    Series {
        key: "fixture".into(),
        raw_timestamps: timestamps.iter().map(|t| t.to_string()).collect(),
        timestamps,
        values: vec![0.0; rows],
        windows,
    }
}

/// NAB's confusion counts: rows after the probation.
fn counts(series: &Series, detected: &[usize]) -> [usize; 4] {
    let n = series.values.len();
    let probation = ((0.15 * n as f64).floor() as usize).min(750);
    let mut counts = [0; 4];
    for i in probation..n {
        let inside = series.windows.iter().any(|&(a, b)| (a..=b).contains(&i));
        let hit = detected.contains(&i);
        let k = match (hit, inside) {
            (true, true) => 0,   // TP
            (false, false) => 1, // TN
            (true, false) => 2,  // FP
            (false, true) => 3,  // FN
        };
        counts[k] += 1;
    }
    counts
}

fn profile(name: &str) -> &'static Profile {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .expect("a NAB profile")
}

#[test]
fn raw_scores_match_nabs_own_scorer() {
    // speed_7578: probation 169 rows; windows of 29 rows.
    let w = 29;
    let (w1, w2, w3) = (400, 700, 1000);
    let w4 = w3 + w + 7;
    let speed = series(
        1127,
        vec![
            (w1, w1 + w - 1),
            (w2, w2 + w - 1),
            (w3, w3 + w - 1),
            (w4, w4 + w - 1),
        ],
    );
    let speed_hits = vec![w3 + 17, w4 + 14];
    // art_daily_no_noise: probation 604 rows; eight detections, no window.
    let quiet = series(4032, Vec::new());
    let quiet_hits: Vec<usize> = (0..8).map(|k| 700 + 350 * k).collect();
    let cases: BTreeMap<&str, (&Series, &Vec<usize>)> = BTreeMap::from([
        ("realTraffic/speed_7578.csv", (&speed, &speed_hits)),
        (
            "artificialNoAnomaly/art_daily_no_noise.csv",
            (&quiet, &quiet_hits),
        ),
    ]);

    let text = include_str!("fixtures/nab_scores.csv");
    let mut checked = 0;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (profile_name, file) = (fields[1], fields[2]);
        let expected: f64 = fields[4].parse().unwrap();
        let expected_counts: Vec<usize> = fields[5..9].iter().map(|f| f.parse().unwrap()).collect();
        let total: usize = fields[9].parse().unwrap();
        let (series, hits) = cases[file];
        assert_eq!(series.values.len(), total, "{file}");
        assert_eq!(counts(series, hits).to_vec(), expected_counts, "{file}");
        let ours = raw_score(series, |i| hits.contains(&i), profile(profile_name));
        assert!(
            (ours - expected).abs() < 1e-9,
            "{profile_name} {file}: ours {ours}, NAB's {expected}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}
