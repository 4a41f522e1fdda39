//! Property-based fuzzing of the wire decoders: whatever bytes arrive on a
//! subject, decoding returns a value or an error, never a panic, and a
//! decoded value re-encodes to something that decodes to the same value.
//!
//! `cargo test` runs each property for its default cases; the `long_*`
//! tests run for `FUZZ_SECONDS` (default 60) when asked:
//! `FUZZ_SECONDS=600 cargo test -p inspector-domain --test fuzz_decoders -- --ignored`.

use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, Finding, InspectionReport, SensorRun};
use proptest::prelude::*;

/// Decodes `bytes` as every message type; checks decode-encode-decode.
fn decode_all(bytes: &[u8]) {
    fn round_trip<T: WireMessage + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
        if let Ok(value) = T::from_bytes(bytes) {
            let again = T::from_bytes(&value.to_bytes()).expect("re-encoded value decodes");
            assert_eq!(again, value);
        }
    }
    round_trip::<Finding>(bytes);
    round_trip::<SensorRun>(bytes);
    round_trip::<InspectionReport>(bytes);
    round_trip::<Alert>(bytes);
}

/// Valid encodings with bytes flipped, cut or inserted: close to real
/// messages, so the fuzzing gets past the outer framing.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seed = inspector_domain::fixtures::trend(
        "disk_used_percent",
        &[("node", "n1")],
        "t-0",
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    )
    .to_bytes();
    (
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        any::<usize>(),
    )
        .prop_map(move |(flips, cut)| {
            let mut bytes = seed.clone();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            bytes
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_findings_never_panic(bytes in mutated()) {
        decode_all(&bytes);
    }
}

fn run_for_budget(strategy: impl Strategy<Value = Vec<u8>>) {
    let cases =
        inspector_test_harness::fuzz_for_budget(5_000, &strategy, |bytes| decode_all(&bytes));
    println!("{cases} cases without a failure");
}

#[test]
#[ignore = "long fuzz run: FUZZ_SECONDS=600 cargo test -p inspector-domain --test fuzz_decoders -- --ignored"]
fn long_arbitrary_bytes() {
    run_for_budget(proptest::collection::vec(any::<u8>(), 0..2048));
}

#[test]
#[ignore = "long fuzz run: FUZZ_SECONDS=600 cargo test -p inspector-domain --test fuzz_decoders -- --ignored"]
fn long_mutated_findings() {
    run_for_budget(mutated());
}
