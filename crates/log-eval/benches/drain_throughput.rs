//! Throughput of the Drain engine on the shared Loghub messages (repeated to
//! 1,000,000 lines), single-threaded. `compare_drain3.sh` beside this file
//! runs drain3 on the same input in the same run and prints the ratio.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inspector_drain::{Drain, DrainConfig, Masker};

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
    let masker = Masker::builtin();
    group.bench_function("builtin_masks_recommended", |b| {
        b.iter(|| {
            let mut drain = Drain::new(DrainConfig::recommended()).expect("valid");
            for line in &lines {
                black_box(drain.add(&masker.mask(line)).cluster.id());
            }
            drain.cluster_count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
