//! Range answers decoded as they arrive, one series at a time, on a
//! blocking thread: memory is one series (at most the per-request point
//! limit), not the whole answer, and whatever the caller does with each
//! series (the baseline detector fits it) runs off the async runtime.
//!
//! The body is read on the runtime and handed chunk by chunk, through a
//! bounded channel, to a `std::io::Read` that `serde_json` parses from; the
//! seeds below walk `{"status", "data": {"resultType", "result": [...]}}`
//! and give each `{"metric", "values"}` entry to the [`SeriesSink`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{PrometheusError, Sample, Series, parse_value, sample_at};

/// Receives each series of a streamed range answer as it is decoded.
pub trait SeriesSink: Send + 'static {
    fn accept(&mut self, series: Series);
}

/// Chunks of the body in flight between the runtime and the decoder.
pub(crate) const CHANNEL_CHUNKS: usize = 8;

/// A blocking `Read` over body chunks sent from the async side.
pub(crate) struct ChannelReader {
    pub(crate) chunks: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    pub(crate) current: bytes::Bytes,
}

impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// What the top level of the answer said, besides the series.
#[derive(Debug, Default)]
struct Envelope {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    series: usize,
}

/// Decodes a range answer from `reader`, giving each series to `sink`;
/// at most `max_points` samples per series. Blocking. Never panics,
/// whatever the bytes (fuzzed with [`crate::decode_response`]).
pub fn decode_range_stream<K: SeriesSink>(
    reader: impl io::Read,
    mut sink: K,
    max_points: usize,
) -> Result<K, PrometheusError> {
    let mut deserializer = serde_json::Deserializer::from_reader(io::BufReader::new(reader));
    let envelope = ResponseSeed {
        sink: &mut sink,
        max_points,
    }
    .deserialize(&mut deserializer)
    .and_then(|envelope| deserializer.end().map(|()| envelope))
    .map_err(|e| PrometheusError::Decode(format!("streamed range answer: {e}")))?;
    match envelope.status.as_deref() {
        Some("success") => Ok(sink),
        Some("error") => Err(PrometheusError::Query {
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: envelope.error.unwrap_or_default(),
        }),
        other => Err(PrometheusError::Decode(format!(
            "answer status {other:?} with {} series",
            envelope.series
        ))),
    }
}

struct ResponseSeed<'a, K> {
    sink: &'a mut K,
    max_points: usize,
}

impl<'de, K: SeriesSink> DeserializeSeed<'de> for ResponseSeed<'_, K> {
    type Value = Envelope;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, K: SeriesSink> Visitor<'de> for ResponseSeed<'_, K> {
    type Value = Envelope;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Prometheus API answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => envelope.status = Some(map.next_value()?),
                "errorType" => envelope.error_type = Some(map.next_value()?),
                "error" => envelope.error = Some(map.next_value()?),
                "data" => {
                    envelope.series = map.next_value_seed(DataSeed {
                        sink: &mut *self.sink,
                        max_points: self.max_points,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

struct DataSeed<'a, K> {
    sink: &'a mut K,
    max_points: usize,
}

impl<'de, K: SeriesSink> DeserializeSeed<'de> for DataSeed<'_, K> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, K: SeriesSink> Visitor<'de> for DataSeed<'_, K> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the data of a range answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut result_type: Option<String> = None;
        let mut series = 0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => result_type = Some(map.next_value()?),
                // Prometheus writes the type first; anything else is not a
                // range answer this decoder can stream.
                "result" if result_type.as_deref() == Some("matrix") => {
                    series = map.next_value_seed(ResultSeed {
                        sink: &mut *self.sink,
                        max_points: self.max_points,
                    })?;
                }
                "result" => {
                    return Err(de::Error::custom(format!(
                        "result of type {result_type:?}, expected a matrix"
                    )));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(series)
    }
}

struct ResultSeed<'a, K> {
    sink: &'a mut K,
    max_points: usize,
}

impl<'de, K: SeriesSink> DeserializeSeed<'de> for ResultSeed<'_, K> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, K: SeriesSink> Visitor<'de> for ResultSeed<'_, K> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while let Some(series) = seq.next_element_seed(EntrySeed {
            max_points: self.max_points,
        })? {
            self.sink.accept(series);
            count += 1;
        }
        Ok(count)
    }
}

struct EntrySeed {
    max_points: usize,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Series;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Series, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Series;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a series with metric and values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Series, A::Error> {
        let mut labels = BTreeMap::new();
        let mut samples = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metric" => labels = map.next_value()?,
                "values" => {
                    samples = map.next_value_seed(SamplesSeed {
                        max_points: self.max_points,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Series { labels, samples })
    }
}

struct SamplesSeed {
    max_points: usize,
}

impl<'de> DeserializeSeed<'de> for SamplesSeed {
    type Value = Vec<Sample>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Sample>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SamplesSeed {
    type Value = Vec<Sample>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [time, \"value\"] pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Sample>, A::Error> {
        let mut samples = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_points));
        while let Some((t, SampleValue(value))) = seq.next_element::<(f64, SampleValue)>()? {
            if samples.len() == self.max_points {
                return Err(de::Error::custom(format!(
                    "a series has more than the {} samples asked for",
                    self.max_points
                )));
            }
            samples.push(sample_at(t, value).map_err(de::Error::custom)?);
        }
        Ok(samples)
    }
}

/// A sample value, parsed from its string without keeping the string.
struct SampleValue(f64);

impl<'de> de::Deserialize<'de> for SampleValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = SampleValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sample value string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SampleValue, E> {
                parse_value(v).map(SampleValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<Series>);
    impl SeriesSink for Collect {
        fn accept(&mut self, series: Series) {
            self.0.push(series);
        }
    }

    fn decode_str(body: &str, max_points: usize) -> Result<Vec<Series>, PrometheusError> {
        decode_range_stream(body.as_bytes(), Collect::default(), max_points).map(|c| c.0)
    }

    #[test]
    fn streams_the_series_of_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"a"},"values":[[10,"1"],[20.5,"NaN"]]},
            {"metric":{"job":"b"},"values":[[10,"+Inf"]]}]},"warnings":["x"]}"#;
        let series = decode_str(body, 10).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["job"], "a");
        assert_eq!(
            series[0].samples[0],
            Sample {
                t_ms: 10_000,
                value: 1.0
            }
        );
        assert!(series[0].samples[1].value.is_nan());
        assert_eq!(series[1].samples[0].value, f64::INFINITY);
    }

    #[test]
    fn errors_and_hostile_answers_are_decode_errors() {
        let error = decode_str(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            10,
        )
        .unwrap_err();
        assert!(matches!(error, PrometheusError::Query { .. }), "{error}");
        for (body, says) in [
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                "expected a matrix",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"1"],[2,"2"],[3,"3"]]}]}}"#,
                "more than the 2 samples",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[-1e30,"1"]]}]}}"#,
                "timestamp",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"one"]]}]}}"#,
                "not a number",
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"1"]"#,
                "EOF",
            ),
            (r#"{"status":"success"} trailing"#, "trailing"),
            (
                r#"{"data":{"resultType":"matrix","result":[]}}"#,
                "status None",
            ),
        ] {
            let error = decode_str(body, 2).unwrap_err().to_string();
            assert!(error.contains(says), "{body}: {error}");
        }
    }
}
