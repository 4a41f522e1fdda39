//! Unit tests of the engine against drain3's documented behaviour.

use super::*;

fn drain(config: DrainConfig) -> Drain {
    Drain::new(config).unwrap()
}

fn add(drain: &mut Drain, line: &str) -> (ClusterId, Change, String) {
    let added = drain.add(line);
    (added.cluster.id(), added.change, added.cluster.template())
}

#[test]
fn drain3_readme_example() {
    // The sequence from drain3's README, with its default settings.
    let mut d = drain(DrainConfig::default());
    assert_eq!(
        add(&mut d, "connected to 10.0.0.1"),
        (1, Change::Created, "connected to 10.0.0.1".into())
    );
    assert_eq!(
        add(&mut d, "connected to 192.168.0.1"),
        (1, Change::Changed, "connected to <*>".into())
    );
    assert_eq!(
        add(&mut d, "Hex number 0xDEADBEAF"),
        (2, Change::Created, "Hex number 0xDEADBEAF".into())
    );
    assert_eq!(
        add(&mut d, "user davidoh logged in"),
        (3, Change::Created, "user davidoh logged in".into())
    );
    assert_eq!(
        add(&mut d, "user eranr logged in"),
        (3, Change::Changed, "user <*> logged in".into())
    );
    assert_eq!(
        add(&mut d, "user eranr logged in"),
        (3, Change::Matched, "user <*> logged in".into())
    );
    assert_eq!(d.cluster(3).unwrap().size(), 3);
}

#[test]
fn similarity_threshold_and_token_count_split_clusters() {
    let mut d = drain(DrainConfig {
        sim_th: 0.7,
        ..DrainConfig::default()
    });
    add(&mut d, "a b c d e");
    // 3 of 5 match: 0.6 < 0.7, a new cluster.
    assert_eq!(add(&mut d, "a b c x y").1, Change::Created);
    // Different length: always a different cluster.
    assert_eq!(add(&mut d, "a b c d").1, Change::Created);
    assert_eq!(add(&mut d, "a b c d e").1, Change::Matched);
}

#[test]
fn numeric_first_tokens_share_the_wildcard_branch() {
    let mut d = drain(DrainConfig::default());
    add(&mut d, "123 apples eaten");
    // Different first token but numeric: same branch, similar enough.
    assert_eq!(
        add(&mut d, "456 apples eaten"),
        (1, Change::Changed, "<*> apples eaten".into())
    );
    let mut plain = drain(DrainConfig {
        parametrize_numeric_tokens: false,
        ..DrainConfig::default()
    });
    add(&mut plain, "123 apples eaten");
    assert_eq!(add(&mut plain, "456 apples eaten").1, Change::Created);
}

#[test]
fn max_children_overflow_goes_to_the_wildcard_child() {
    let mut d = drain(DrainConfig {
        max_children: 3,
        ..DrainConfig::default()
    });
    // Children: "alpha", then the last free slot is the wildcard child.
    add(&mut d, "alpha x y");
    add(&mut d, "beta x y"); // 1 + 1 < 3: own child... then wildcard at 3
    let (id, change, template) = add(&mut d, "gamma x y");
    // gamma shares the wildcard child with beta? drain3: children {alpha, beta} → len+1 == 3 → wildcard.
    assert_eq!(change, Change::Created, "{id} {template}");
    let (_, change, template) = add(&mut d, "delta x y");
    assert_eq!(
        change,
        Change::Changed,
        "delta joins gamma under the wildcard child"
    );
    assert_eq!(template, "<*> x y");
}

#[test]
fn empty_and_whitespace_lines() {
    let mut d = drain(DrainConfig::default());
    assert_eq!(add(&mut d, "   ").1, Change::Created);
    assert_eq!(add(&mut d, "").1, Change::Matched);
    assert_eq!(add(&mut d, "\t").0, 1);
}

#[test]
fn extra_delimiters_split_tokens() {
    let mut d = drain(DrainConfig {
        extra_delimiters: vec!["=".into(), ",".into()],
        ..DrainConfig::default()
    });
    assert_eq!(add(&mut d, "key=value,other=1").2, "key value other 1");
}

#[test]
fn masked_placeholders_act_as_wildcards() {
    let mut d = drain(DrainConfig::default());
    assert_eq!(add(&mut d, "open <*> now").2, "open <*> now");
    assert_eq!(add(&mut d, "open <*> now").1, Change::Matched);
}

#[test]
fn eviction_never_reports_a_template_as_new_again() {
    let mut d = drain(DrainConfig {
        max_clusters: Some(2),
        ..DrainConfig::default()
    });
    let first = add(&mut d, "disk full on node a");
    add(&mut d, "connection refused by server");
    add(&mut d, "user logged out cleanly");
    assert_eq!(d.cluster_count(), 2);
    assert_eq!(d.evicted_count(), 1);
    // The evicted template comes back (even with a different variable part).
    let back = add(&mut d, "disk full on node b");
    assert_eq!(back.0, first.0, "same id as before eviction");
    assert_eq!(back.1, Change::Revived);
    assert_eq!(back.2, "disk full on node <*>");
    // Thrash through many templates: creations are only the truly new ones.
    let mut created = 0;
    for round in 0..5 {
        for template in 0..20 {
            // Templates of different lengths can never match each other.
            let line = format!("{}happened in round {round}", "event ".repeat(template + 1));
            if add(&mut d, &line).1 == Change::Created {
                created += 1;
            }
        }
    }
    assert_eq!(
        created, 20,
        "each of the 20 templates is created exactly once"
    );
    assert!(d.cluster_count() <= 2);
}

#[test]
fn snapshot_round_trip_keeps_ids_and_knowledge() {
    let mut d = drain(DrainConfig {
        max_clusters: Some(3),
        ..DrainConfig::default()
    });
    for line in [
        "alpha one",
        "beta two",
        "gamma three",
        "delta four",
        "alpha five",
        "epsilon 6 x",
    ] {
        d.add(line);
    }
    let bytes = d.snapshot();
    let mut restored = Drain::restore(&bytes).unwrap();
    assert_eq!(restored.cluster_count(), d.cluster_count());
    assert_eq!(restored.evicted_count(), d.evicted_count());
    for line in [
        "alpha seven",
        "beta eight",
        "gamma nine",
        "delta ten",
        "epsilon 7 x",
    ] {
        let before = d.add(line);
        let (before_id, before_change) = (before.cluster.id(), before.change);
        let after = restored.add(line);
        assert_eq!(
            (after.cluster.id(), after.change),
            (before_id, before_change),
            "{line}"
        );
        assert_ne!(
            after.change,
            Change::Created,
            "{line} was known before the restart"
        );
    }
    // New templates continue the id sequence.
    assert_eq!(
        restored.add("brand new template here").cluster.id(),
        d.add("brand new template here").cluster.id()
    );
}

#[test]
fn snapshot_errors_are_clear() {
    assert!(matches!(
        Drain::restore(b"nonsense"),
        Err(SnapshotError::NotASnapshot)
    ));
    let mut bytes = drain(DrainConfig::default()).snapshot();
    bytes[5] = 9;
    assert_eq!(
        Drain::restore(&bytes).unwrap_err().to_string(),
        "snapshot version 9 is not supported (this build reads version 2)"
    );
    let bytes = drain(DrainConfig::default()).snapshot();
    assert!(matches!(
        Drain::restore(&bytes[..bytes.len() - 3]),
        Err(SnapshotError::Corrupt(_))
    ));
}

#[test]
fn config_validation() {
    assert_eq!(
        Drain::new(DrainConfig {
            depth: 2,
            ..DrainConfig::default()
        })
        .unwrap_err(),
        ConfigError::Depth(2)
    );
    assert!(
        Drain::new(DrainConfig {
            sim_th: 1.5,
            ..DrainConfig::default()
        })
        .is_err()
    );
}

#[test]
fn tokenizes_like_python_split() {
    let mut d = drain(DrainConfig::default());
    // Vertical tab, form feed, information separators, no-break space.
    let (_, _, template) = add(&mut d, " a\x0bb\x0cc\x1cd\x1fe\u{a0}f  g\r\n");
    assert_eq!(template, "a b c d e f g");
}

/// Regression: a blank line (no tokens) whose cluster was evicted made the
/// next blank line panic ("leaf ids are live"): the leaf still listed the
/// evicted id. Binary log content produced such lines (issue 10, case 2).
#[test]
fn a_blank_line_after_its_cluster_was_evicted_does_not_panic() {
    let mut d = drain(DrainConfig {
        max_clusters: Some(2),
        ..DrainConfig::default()
    });
    let blank = add(&mut d, "   ");
    assert_eq!(blank.1, Change::Created);
    add(&mut d, "connection refused by server");
    add(&mut d, "user logged out cleanly");
    assert_eq!(d.evicted_count(), 1, "the blank-line cluster was evicted");
    let again = add(&mut d, "\t");
    assert_eq!(again.0, blank.0, "revived under its old id");
    assert_eq!(again.1, Change::Revived);
}

/// Random bytes (decoded lossily, as the log source does) through a small
/// capped engine: nothing panics, and the cap holds.
#[test]
fn random_binary_lines_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let mut d = drain(DrainConfig {
        max_clusters: Some(50),
        max_graveyard: 200,
        ..DrainConfig::default()
    });
    for _ in 0..20_000 {
        let len = rng.random_range(0..40);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let line = String::from_utf8_lossy(&bytes);
        d.add(&line);
        assert!(d.cluster_count() <= 50);
        assert!(d.evicted_count() <= 200);
    }
}

/// A version-1 snapshot (graveyard as whole clusters in a tree, written by
/// the engine before the compact graveyard) restores: its buried templates
/// are re-buried compactly and revive under their ids.
#[test]
fn version_1_snapshots_restore() {
    let bytes = include_bytes!("../tests/fixtures/snapshot-v1.bin");
    assert_eq!(bytes[5], 1, "the fixture is a version-1 snapshot");
    let mut d = Drain::restore(bytes).unwrap();
    assert_eq!(d.cluster_count(), 2);
    assert_eq!(d.evicted_count(), 3);
    let revived = d.add("alpha service started on node");
    assert_eq!(revived.change, Change::Revived);
    assert_eq!(revived.cluster.id(), 1);
    assert_eq!(d.add("zeta something entirely new here").cluster.id(), 6);
}

/// Lines from a small vocabulary, so leaves hold many clusters, templates
/// generalise, and (capped) clusters are evicted and revived.
fn crowded_line() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just("d"),
            Just("e"),
            Just("<*>"),
            Just("7")
        ],
        0..9,
    )
    .prop_map(|tokens| tokens.join(" "))
}

/// What the engine did with each line, and the templates it ends with.
fn trace(
    config: &DrainConfig,
    shortcuts: bool,
    lines: &[String],
) -> (Vec<(ClusterId, Change)>, Vec<String>) {
    let mut d = drain(config.clone());
    d.scan_max = if shortcuts { 0 } else { usize::MAX };
    d.set_recent_lines(shortcuts);
    let steps = lines
        .iter()
        .map(|line| {
            let added = d.add(line);
            (added.cluster.id(), added.change)
        })
        .collect();
    let mut templates: Vec<String> = d
        .clusters()
        .map(|c| format!("{} x{} {}", c.id(), c.size(), c.template()))
        .collect();
    templates.sort();
    (steps, templates)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(256))]
    /// The leaf index and the memory of recent lines give exactly the full
    /// scan's answers (same clusters, same ties, same changes, same sizes),
    /// at any threshold and depth, capped or not.
    #[test]
    fn shortcuts_answer_as_the_full_scan(
        lines in proptest::collection::vec(crowded_line(), 0..300),
        sim_th in proptest::sample::select(vec![0.0, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0]),
        depth in 3usize..6,
        capped in proptest::bool::ANY,
    ) {
        let config = DrainConfig {
            depth,
            sim_th,
            max_clusters: capped.then_some(12),
            max_graveyard: 20,
            ..DrainConfig::default()
        };
        let scanned = trace(&config, false, &lines);
        let indexed = trace(&config, true, &lines);
        proptest::prop_assert_eq!(scanned, indexed);
    }
}
