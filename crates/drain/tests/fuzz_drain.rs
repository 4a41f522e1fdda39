//! Property-based fuzzing of the Drain engine with masks on, as the
//! log-pattern sensor runs it: any sequence of lines (text, white space,
//! lossily decoded binary) is mined without a panic, within its caps, and
//! every line lands in a live cluster.
//!
//! `FUZZ_SECONDS=600 cargo test -p inspector-drain --test fuzz_drain -- --ignored`
//! runs the long version.

use inspector_drain::{Drain, DrainConfig, Masker};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        // Log-like text with variable parts.
        "[a-z]{1,8}( [a-zA-Z0-9_./:=-]{1,12}){0,12}",
        // White space of every kind Python's split() knows.
        "[ \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\u{85}\u{a0}]{0,6}",
        // Arbitrary bytes, decoded the way the log source does.
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        // Any Unicode.
        ".{0,40}",
    ]
}

fn mine(lines: &[String]) {
    let mut drain = Drain::new(DrainConfig {
        max_clusters: Some(16),
        max_graveyard: 32,
        ..DrainConfig::default()
    })
    .expect("valid config");
    let masker = Masker::builtin();
    for line in lines {
        let masked = masker.mask(line);
        let id = drain.add(&masked).cluster.id();
        assert!(drain.cluster(id).is_some(), "the line's cluster is live");
        assert!(drain.cluster_count() <= 16);
        assert!(drain.evicted_count() <= 32);
    }
}

proptest! {
    #![proptest_config(Config::with_cases(64))]
    #[test]
    fn any_lines_are_mined_within_the_caps(lines in proptest::collection::vec(line(), 0..200)) {
        mine(&lines);
    }
}

#[test]
#[ignore = "long fuzz run: FUZZ_SECONDS=600 cargo test -p inspector-drain --test fuzz_drain -- --ignored"]
fn long_any_lines() {
    let strategy = proptest::collection::vec(line(), 0..400);
    let cases = inspector_test_harness::fuzz_for_budget(200, &strategy, |lines| mine(&lines));
    println!("{cases} line sequences without a failure");
}
