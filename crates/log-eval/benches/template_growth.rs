//! Matching cost against the number of live templates, creating templates
//! as it goes: an engine (recommended config) filled with 500 or 50,000
//! templates that all share one tree leaf, then 2,000 lines of which half
//! create a template and half repeat a known one; with the leaf index (the
//! default) and with every leaf scanned (drain3's way, the reference).
//! `growth_drain3.py` beside this file times drain3 on the same lines.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use inspector_drain::{Drain, DrainConfig};
use inspector_log_eval::growing;

const WINDOW: u64 = 2_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("template_growth");
    group.throughput(Throughput::Elements(WINDOW));
    group.sample_size(10);
    for templates in [500u64, 50_000] {
        let mut filled = Drain::new(DrainConfig::recommended()).expect("valid");
        for line in growing::prefill(templates) {
            filled.add(&line);
        }
        assert_eq!(filled.cluster_count() as u64, templates);
        let lines = growing::window(templates, WINDOW);
        for (name, indexed) in [("leaf_index", true), ("scan", false)] {
            group.bench_function(format!("{name}_{templates}"), |b| {
                b.iter_batched(
                    || {
                        let mut engine = filled.clone();
                        engine.set_leaf_index(indexed);
                        engine
                    },
                    |mut engine| {
                        for line in &lines {
                            black_box(engine.add(line).cluster.id());
                        }
                        // Returned, so it is dropped outside the timing (a
                        // 50,000-template engine takes longer to free than
                        // the window takes to mine).
                        engine
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
