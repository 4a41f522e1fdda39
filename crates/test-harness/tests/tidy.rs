//! Invariants of the workspace that ARCHITECTURE.md states, checked over
//! `cargo metadata` and the sources, so they stay true.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use inspector_test_harness::CORPORA_IGNORE_REASON;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Workspace crates and their normal (non-dev) dependencies' names.
fn crates() -> Vec<(String, BTreeSet<String>)> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| dep["kind"].is_null())
                .map(|dep| dep["name"].as_str().unwrap().to_string())
                .collect();
            (package["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

fn users_of(dependency: &str) -> BTreeSet<String> {
    crates()
        .into_iter()
        .filter(|(_, deps)| deps.contains(dependency))
        .map(|(name, _)| name)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn only_the_aggregator_talks_to_redis() {
    assert_eq!(users_of("redis"), set(&["inspector-aggregator"]));
}

#[test]
fn only_log_pattern_membership_and_the_aggregator_talk_to_kubernetes() {
    assert_eq!(
        users_of("kube"),
        set(&[
            "inspector-aggregator",
            "inspector-log-pattern",
            "inspector-membership"
        ])
    );
}

#[test]
fn only_the_bus_and_the_query_ends_speak_nats() {
    // The aggregator answers request-reply and the CLI asks; JetStream
    // publishing and consuming stay in the bus.
    assert_eq!(
        users_of("async-nats"),
        set(&["inspector", "inspector-aggregator", "inspector-bus"])
    );
}

#[test]
fn pure_crates_do_no_io() {
    let io = ["tokio", "reqwest", "redis", "async-nats", "kube", "axum"];
    let pure = [
        "inspector-trend",
        "inspector-baseline",
        "inspector-domain",
        "inspector-proto",
        "inspector-drain",
    ];
    let all = crates();
    for name in pure {
        let (_, deps) = all
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not in the workspace"));
        let found: Vec<&str> = io.into_iter().filter(|d| deps.contains(*d)).collect();
        assert!(found.is_empty(), "{name} depends on {found:?}");
    }
}

/// Tests that read the public corpora are ignored with the one reason, so a
/// clone without them passes and says why they did not run.
#[test]
fn corpus_tests_are_ignored_with_the_shared_reason() {
    let attribute = format!("#[ignore = \"{CORPORA_IGNORE_REASON}\"]");
    let mut checked = 0;
    for file in test_sources(&root().join("crates")) {
        let text = std::fs::read_to_string(&file).unwrap();
        if !text.contains("corpus(\"") {
            continue;
        }
        for (i, _) in text.match_indices("#[test]") {
            let after = &text[i + "#[test]".len()..];
            assert!(
                after.trim_start().starts_with(&attribute),
                "{}: a test in a corpus file lacks {attribute}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "found only {checked} corpus tests");
}

/// `.rs` files under a `tests/` folder below `dir`.
fn test_sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(test_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.components().any(|c| c.as_os_str() == "tests")
        {
            found.push(path);
        }
    }
    found
}

/// The image builds every service binary of the workspace.
#[test]
fn the_image_builds_every_binary() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    for binary in [
        "aggregator",
        "trend-predictor",
        "baseline-detector",
        "log-pattern",
        "inspector",
    ] {
        assert!(dockerfile.contains(&format!("--bin {binary}")), "{binary}");
    }
}
