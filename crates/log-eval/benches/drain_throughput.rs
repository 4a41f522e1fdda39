//! Throughput of the Drain engine on the shared Loghub messages (repeated to
//! 1,000,000 lines), single-threaded: without masks (drain3's settings), with
//! the built-in token classifier (the default config), and with the chain of
//! ten regular expressions the classifier replaced (same placeholders, the
//! reference for what masking used to cost). `compare_drain3.sh` beside this
//! file runs drain3 on the same input in the same run and prints the ratios.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inspector_drain::{Drain, DrainConfig, MaskRule, Masker};

/// The regular expressions the built-in masks were before the token
/// classifier, in their order.
const REGEX_MASKS: &[(&str, &str)] = &[
    (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "TS",
    ),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "TIME"),
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "UUID",
    ),
    (
        r"\[?\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b\]?(?::\d{1,5})?",
        "IP",
    ),
    (r"(?:\b|/)(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b", "IP"),
    (r"(?:/[\w.~-]+){2,}/?", "PATH"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"(?:(?P<keep>_)|\b|-)[0-9a-fA-F]{8,}\b", "NUM"),
    (
        r"\b(?:[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*|[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*)\b",
        "NUM",
    ),
    (
        r"(?:(?P<keep>_)|\b|[-+])\d+(?:\.\d+)?(?:[kKMGT]i?B|[kmµun]?s|%|[KMGT])?\b",
        "NUM",
    ),
];

const LINES: usize = 1_000_000;

fn bench(c: &mut Criterion) {
    let dir = inspector_test_harness::corpus("loghub-2k");
    let lines = inspector_log_eval::benchmark_lines(&dir, LINES).expect("a Loghub-2k folder");
    let mut group = c.benchmark_group("drain");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    group.bench_function("drain3_settings_no_masks", |b| {
        b.iter(|| {
            let mut drain = Drain::new(DrainConfig::default()).expect("valid");
            for line in &lines {
                black_box(drain.add(line).cluster.id());
            }
            drain.cluster_count()
        })
    });
    let regex: Vec<MaskRule> = REGEX_MASKS
        .iter()
        .map(|(p, m)| MaskRule::new(*p, *m))
        .collect();
    for (name, masker) in [
        ("builtin_classifier_recommended", Masker::builtin()),
        (
            "regex_chain_recommended",
            Masker::new(&regex).expect("reference masks compile"),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut drain = Drain::new(DrainConfig::recommended()).expect("valid");
                let mut masked = String::new();
                for line in &lines {
                    masked.clear();
                    masker.mask_into(line, &mut masked);
                    black_box(drain.add(&masked).cluster.id());
                }
                drain.cluster_count()
            })
        });
    }
    group.finish();
    // Masking alone, the same lines.
    let mut group = c.benchmark_group("masks");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    for (name, masker) in [
        ("builtin_classifier", Masker::builtin()),
        (
            "regex_chain",
            Masker::new(&regex).expect("reference masks compile"),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut total = 0;
                for line in &lines {
                    total += black_box(masker.mask(line)).len();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
