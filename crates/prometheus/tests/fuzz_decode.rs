//! Property-based fuzzing of the Prometheus answer decoders (whole and
//! streamed): any status and
//! body (arbitrary bytes, or JSON shaped like an API answer with hostile
//! values) is series or an error, never a panic; every decoded timestamp is
//! in range.
//!
//! `FUZZ_SECONDS=600 cargo test -p inspector-prometheus --test fuzz_decode -- --ignored`
//! runs the long version.

use inspector_prometheus::{
    MAX_ABS_TIMESTAMP_SECONDS, Series, SeriesSink, decode_range_stream, decode_response,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|i| json!(i)),
        Just(json!(-1e30)),
        Just(json!(1e300)),
        Just(json!("NaN")),
        Just(json!(null)),
    ]
}

fn sample() -> impl Strategy<Value = Value> {
    (
        hostile_number(),
        prop_oneof![
            Just(json!("NaN")),
            Just(json!("+Inf")),
            Just(json!("-Inf")),
            Just(json!("1.5")),
            ".{0,8}".prop_map(Value::String),
            hostile_number(),
        ],
    )
        .prop_map(|(t, v)| json!([t, v]))
}

fn answer() -> impl Strategy<Value = Vec<u8>> {
    let matrix = proptest::collection::vec(proptest::collection::vec(sample(), 0..6), 0..4)
        .prop_map(|series| {
            json!({"status": "success", "data": {"resultType": "matrix", "result":
                series.into_iter().map(|values| json!({"metric": {"a": "b"}, "values": values})).collect::<Vec<_>>()}})
        });
    let vector = proptest::collection::vec(sample(), 0..4).prop_map(|values| {
        json!({"status": "success", "data": {"resultType": "vector", "result":
            values.into_iter().map(|value| json!({"metric": {}, "value": value})).collect::<Vec<_>>()}})
    });
    let scalar = sample().prop_map(
        |value| json!({"status": "success", "data": {"resultType": "scalar", "result": value}}),
    );
    let error = ".{0,20}"
        .prop_map(|message| json!({"status": "error", "errorType": "bad_data", "error": message}));
    prop_oneof![
        matrix.prop_map(|v| v.to_string().into_bytes()),
        vector.prop_map(|v| v.to_string().into_bytes()),
        scalar.prop_map(|v| v.to_string().into_bytes()),
        error.prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

#[derive(Default)]
struct Collect(Vec<Series>);

impl SeriesSink for Collect {
    fn accept(&mut self, series: Series) {
        self.0.push(series);
    }
}

/// Most samples per series the streamed decoder is asked to take.
const MAX_POINTS: usize = 4;

fn check(status: u16, body: &[u8]) {
    let whole = decode_response(status, body);
    if let Ok(series) = &whole {
        for sample in series.iter().flat_map(|s| &s.samples) {
            assert!((sample.t_ms as f64).abs() <= MAX_ABS_TIMESTAMP_SECONDS * 1000.0 + 1.0);
        }
    }
    // The streamed decoder (a 2xx answer's body) never panics either, and
    // where both decode a matrix within its point limit, they agree.
    let streamed = decode_range_stream(body, Collect::default(), MAX_POINTS).map(|c| c.0);
    if let (Ok(whole), Ok(streamed)) = (&whole, &streamed)
        && whole.iter().all(|s| s.samples.len() <= MAX_POINTS)
        && body.windows(8).any(|w| w == b"\"matrix\"")
    {
        assert_eq!(whole.len(), streamed.len());
        for (a, b) in whole.iter().zip(streamed) {
            assert_eq!(a.labels, b.labels);
            assert_eq!(a.samples.len(), b.samples.len());
            for (x, y) in a.samples.iter().zip(&b.samples) {
                assert_eq!(x.t_ms, y.t_ms);
                assert!(x.value == y.value || (x.value.is_nan() && y.value.is_nan()));
            }
        }
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![Just(200u16), Just(400), Just(422), Just(503), any::<u16>()]
}

proptest! {
    #[test]
    fn any_answer_decodes_or_errs(status in status(), body in answer()) {
        check(status, &body);
    }
}

#[test]
#[ignore = "long fuzz run: FUZZ_SECONDS=600 cargo test -p inspector-prometheus --test fuzz_decode -- --ignored"]
fn long_any_answer() {
    let cases =
        inspector_test_harness::fuzz_for_budget(2_000, &(status(), answer()), |(status, body)| {
            check(status, &body)
        });
    println!("{cases} answers without a failure");
}
