//! Issue 10, case 7: the graveyard of evicted templates keeps a compact
//! form (one string per template, found by a hashed routing signature), not
//! whole clusters in a tree of their own (about 0.85 KB each before, capped
//! at 1,000,000 per workload). Measured as the heap bytes the engine holds
//! with 100,000 buried, by an instrumented global allocator (this test
//! binary's own).

use inspector_drain::{Change, Drain, DrainConfig};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Heap bytes allocated and not yet freed.
fn live() -> i64 {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as i64 + stats.bytes_reallocated as i64 - stats.bytes_deallocated as i64
}

/// A line of ten random lowercase words (4 to 9 letters, no digits): a
/// template of its own, about as long as a typical Loghub template.
fn line(rng: &mut rand::rngs::StdRng) -> String {
    (0..10)
        .map(|_| {
            let len = rng.random_range(4..10);
            (0..len)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn buried_templates_are_compact_and_revive() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let lines: Vec<String> = (0..101_000).map(|_| line(&mut rng)).collect();
    let mut drain = Drain::new(DrainConfig {
        max_clusters: Some(1_000),
        ..DrainConfig::default()
    })
    .unwrap();
    for line in &lines {
        drain.add(line);
    }
    assert_eq!(drain.evicted_count(), 100_000);
    assert_eq!(drain.cluster_count(), 1_000);
    // Still found: the oldest buried template comes back under its id.
    let first = drain.add(&lines[0]);
    assert_eq!(first.change, Change::Revived);
    assert_eq!(first.cluster.id(), 1);
    // What the engine holds: what dropping it frees.
    let with_engine = live();
    drop(drain);
    let held = with_engine - live();
    let per_template = held as f64 / 100_000.0;
    eprintln!(
        "engine with 1,000 live and 100,000 buried templates: {} KB, {per_template:.0} bytes per buried template",
        held >> 10
    );
    // Was about 460 bytes (whole clusters in a tree) in this measure.
    assert!(
        per_template < 250.0,
        "{per_template:.0} bytes per buried template"
    );
}
