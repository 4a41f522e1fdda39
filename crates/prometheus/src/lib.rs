//! A small client for the Prometheus HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`), made for sensors that must tell exactly what went
//! wrong with one query and carry on with the next.
//!
//! Range queries longer than [`PrometheusConfig::max_points_per_request`]
//! points are split into consecutive chunks (Prometheus refuses more than
//! 11,000 points per series) and the series are stitched back together.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// How to reach Prometheus. Every field can also be set from the environment
/// (see the service's README section on configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus:9090` (no `/api/v1`).
    pub url: String,
    /// Per-request timeout; also sent to Prometheus as its query `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Bearer token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Basic-auth user name (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (with `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// Extra PEM CA certificate to trust for `https` URLs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Most points one range request may ask for per series; longer ranges are
    /// chunked. Prometheus' own limit is 11,000.
    #[serde(default = "default_max_points")]
    pub max_points_per_request: u32,
    /// Largest response body read; a larger one is an error, so one huge
    /// answer cannot take the sensor's memory.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_response_bytes() -> usize {
    64 << 20
}
fn default_max_points() -> u32 {
    10_000
}

impl PrometheusConfig {
    /// A config for `url` with every other field at its default.
    /// Checks what serde cannot; the message names the field and never
    /// shows a password.
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            format!(
                "prometheus.url {:?} is not a URL: {e}",
                inspector_domain::redact_url(&self.url)
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "prometheus.url {:?} must be http(s)://host[:port]",
                inspector_domain::redact_url(&self.url)
            ));
        }
        if !(2..=11_000).contains(&self.max_points_per_request) {
            return Err(format!(
                "prometheus.max_points_per_request must be within 2..=11000, got {}",
                self.max_points_per_request
            ));
        }
        if self.timeout.is_zero() {
            return Err("prometheus.timeout must be positive".into());
        }
        if self.max_response_bytes < 1024 {
            return Err("prometheus.max_response_bytes must be at least 1024".into());
        }
        Ok(())
    }

    pub fn new(url: impl Into<String>) -> Self {
        PrometheusConfig {
            url: url.into(),
            timeout: default_timeout(),
            bearer_token: None,
            username: None,
            password: None,
            ca_file: None,
            max_points_per_request: default_max_points(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// One sample: Unix time in milliseconds and its value (may be NaN or ±Inf,
/// as Prometheus can return them; callers decide what to do).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_ms: i64,
    pub value: f64,
}

/// One returned series: its labels and samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("invalid Prometheus config: {0}")]
    Config(String),
    #[error("Prometheus rejected the query ({error_type}): {message}")]
    Query { error_type: String, message: String },
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("Prometheus did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach Prometheus: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("unreadable Prometheus response: {0}")]
    Decode(String),
}

/// Client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: String,
    config: PrometheusConfig,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Matrix(Vec<MatrixEntry>),
    Vector(Vec<VectorEntry>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct MatrixEntry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(Deserialize)]
struct VectorEntry {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

fn parse_sample((t, v): &(f64, String)) -> Result<Sample, PrometheusError> {
    sample_at(*t, parse_value(v)?)
}

/// A sample value as Prometheus writes it (a string).
fn parse_value(v: &str) -> Result<f64, PrometheusError> {
    // Prometheus spells non-finite values "NaN", "+Inf" and "-Inf".
    Ok(match v {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().map_err(|_| {
            PrometheusError::Decode(format!("sample value {other:?} is not a number"))
        })?,
    })
}

/// A sample at `t` seconds, if `t` is a time a monitoring system can mean.
fn sample_at(t: f64, value: f64) -> Result<Sample, PrometheusError> {
    // A timestamp outside what a monitoring system can mean is hostile or
    // broken input: reject it here, so no arithmetic downstream overflows.
    if !t.is_finite() || t.abs() > MAX_ABS_TIMESTAMP_SECONDS {
        return Err(PrometheusError::Decode(format!(
            "sample timestamp {t} is outside ±{MAX_ABS_TIMESTAMP_SECONDS} s"
        )));
    }
    Ok(Sample {
        t_ms: (t * 1000.0).round() as i64,
        value,
    })
}

/// Largest sample timestamp accepted, in seconds from the epoch (about the
/// year 5138); differences of such timestamps in milliseconds fit an `i64`
/// many times over.
pub const MAX_ABS_TIMESTAMP_SECONDS: f64 = 1e11;

/// A range query's step in milliseconds, if the step is positive and the
/// range not reversed.
fn range_step_ms(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> Result<i64, PrometheusError> {
    let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    if step_ms <= 0 {
        return Err(PrometheusError::Config(
            "range query step must be positive".into(),
        ));
    }
    if end < start {
        return Err(PrometheusError::Config(format!(
            "range query end {end} is before start {start}"
        )));
    }
    Ok(step_ms)
}

fn format_time(time: DateTime<Utc>) -> String {
    format!("{:.3}", time.timestamp_millis() as f64 / 1000.0)
}

impl PrometheusClient {
    /// Builds a client. Uses the process-wide rustls crypto provider, which
    /// the binary installs at start.
    pub fn new(config: PrometheusConfig) -> Result<Self, PrometheusError> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(PrometheusError::Config(format!(
                "prometheus.url must start with http:// or https://, got {:?}",
                inspector_domain::redact_url(&config.url)
            )));
        }
        if config.max_points_per_request < 2 || config.max_points_per_request > 11_000 {
            return Err(PrometheusError::Config(format!(
                "prometheus.max_points_per_request must be within 2..=11000, got {}",
                config.max_points_per_request
            )));
        }
        let mut builder = reqwest::Client::builder().timeout(config.timeout);
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                PrometheusError::Config(format!("prometheus.ca_file {}: {e}", path.display()))
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                PrometheusError::Config(format!("prometheus.ca_file {}: {e}", path.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| PrometheusError::Config(format!("HTTP client: {e}")))?;
        Ok(PrometheusClient {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            config,
        })
    }

    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// Evaluates `query` at `time` (instant query). A scalar result is
    /// returned as one series without labels.
    pub async fn query(
        &self,
        query: &str,
        time: DateTime<Utc>,
    ) -> Result<Vec<Series>, PrometheusError> {
        let params = [
            ("query", query.to_string()),
            ("time", format_time(time)),
            ("timeout", format!("{}ms", self.config.timeout.as_millis())),
        ];
        self.get("query", &params).await
    }

    /// Evaluates `query` over `[start, end]` every `step` (range query).
    /// Chunks long ranges; each series' samples come back in time order.
    pub async fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let step_ms = range_step_ms(start, end, step)?;
        let chunk_ms = step_ms * (i64::from(self.config.max_points_per_request) - 1);
        let mut merged: BTreeMap<BTreeMap<String, String>, Vec<Sample>> = BTreeMap::new();
        let mut chunk_start = start;
        loop {
            let chunk_end = (chunk_start + chrono::Duration::milliseconds(chunk_ms)).min(end);
            let params = self.range_params(query, chunk_start, chunk_end, step_ms);
            for series in self.get("query_range", &params).await? {
                merged
                    .entry(series.labels)
                    .or_default()
                    .extend(series.samples);
            }
            if chunk_end >= end {
                break;
            }
            // The next chunk starts one step later so no timestamp is asked twice.
            chunk_start = chunk_end + chrono::Duration::milliseconds(step_ms);
            if chunk_start > end {
                break;
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, samples)| Series { labels, samples })
            .collect())
    }

    /// Evaluates `query` over `[start, end]` every `step` in one request
    /// and gives each series to `sink` as it is decoded, on a blocking
    /// thread (the sink's work runs there too). Memory is one series at a
    /// time, so the answer may be any size (`max_response_bytes` does not
    /// apply); a series may not have more samples than asked for. The range
    /// must fit one request (`max_points_per_request`).
    pub async fn query_range_each<K: SeriesSink>(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        sink: K,
    ) -> Result<K, PrometheusError> {
        let step_ms = range_step_ms(start, end, step)?;
        let points = ((end - start).num_milliseconds() / step_ms + 1) as u64;
        let max_points = u64::from(self.config.max_points_per_request);
        if points > max_points {
            return Err(PrometheusError::Config(format!(
                "a streamed range query asks {points} points per series, over prometheus.max_points_per_request ({max_points})"
            )));
        }
        let params = self.range_params(query, start, end, step_ms);
        let mut response = self.send("query_range", &params).await?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = self.read_bounded(&mut response).await?;
            return Err(match decode_response(status, &body) {
                Err(error) => error,
                Ok(_) => PrometheusError::Http {
                    status,
                    body: String::new(),
                },
            });
        }
        let (chunks, received) = tokio::sync::mpsc::channel(streaming::CHANNEL_CHUNKS);
        let reader = streaming::ChannelReader {
            chunks: received,
            current: bytes::Bytes::new(),
        };
        let decoder =
            tokio::task::spawn_blocking(move || decode_range_stream(reader, sink, points as usize));
        let mut transport = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if chunks.send(Ok(chunk)).await.is_err() {
                        break; // the decoder stopped (an error it reports)
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = chunks
                        .send(Err(std::io::Error::other("the answer was cut off")))
                        .await;
                    transport = Some(self.transport_error(error));
                    break;
                }
            }
        }
        drop(chunks);
        let decoded = decoder
            .await
            .map_err(|e| PrometheusError::Decode(format!("range answer decoder: {e}")))?;
        // A cut-off answer is the transport's failure, not a decode error.
        match (transport, decoded) {
            (Some(error), _) => Err(error),
            (None, decoded) => decoded,
        }
    }

    /// The form of one `query_range` request.
    fn range_params(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step_ms: i64,
    ) -> [(&'static str, String); 5] {
        [
            ("query", query.to_string()),
            ("start", format_time(start)),
            ("end", format_time(end)),
            ("step", format!("{}", step_ms as f64 / 1000.0)),
            ("timeout", format!("{}ms", self.config.timeout.as_millis())),
        ]
    }

    async fn send(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<reqwest::Response, PrometheusError> {
        let url = format!("{}/api/v1/{endpoint}", self.base);
        let mut request = self.http.post(&url).form(params);
        if let Some(token) = &self.config.bearer_token {
            request = request.bearer_auth(token);
        } else if let Some(user) = &self.config.username {
            request = request.basic_auth(user, self.config.password.as_ref());
        }
        request.send().await.map_err(|e| self.transport_error(e))
    }

    async fn get(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<Series>, PrometheusError> {
        let mut response = self.send(endpoint, params).await?;
        let status = response.status().as_u16();
        let body = self.read_bounded(&mut response).await?;
        decode_response(status, &body)
    }

    /// The whole body, refused beyond `max_response_bytes` (never held).
    async fn read_bounded(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Vec<u8>, PrometheusError> {
        let limit = self.config.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|n| n as usize > limit)
        {
            return Err(PrometheusError::Decode(format!(
                "response of {} bytes is over prometheus.max_response_bytes ({limit})",
                response.content_length().unwrap_or_default()
            )));
        }
        // Read in chunks, stopping at the limit: never hold more than it.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(PrometheusError::Decode(format!(
                    "response over prometheus.max_response_bytes ({limit})"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, error: reqwest::Error) -> PrometheusError {
        if error.is_timeout() {
            PrometheusError::Timeout(self.config.timeout)
        } else {
            PrometheusError::Transport(error)
        }
    }
}

/// Decodes a Prometheus HTTP API answer (status code and body) into series,
/// or the error it says or is. Never panics, whatever the bytes.
pub fn decode_response(status: u16, body: &[u8]) -> Result<Vec<Series>, PrometheusError> {
    let success = (200..300).contains(&status);
    // Prometheus answers 400/422/503 with a JSON error body: prefer its message.
    let parsed: Result<ApiResponse, _> = serde_json::from_slice(body);
    match parsed {
        Ok(api) if api.status == "error" => Err(PrometheusError::Query {
            error_type: api.error_type.unwrap_or_else(|| "unknown".into()),
            message: api.error.unwrap_or_default(),
        }),
        Ok(api) if success => PrometheusClient::series_from(api),
        _ if !success => Err(PrometheusError::Http {
            status,
            body: String::from_utf8_lossy(body).chars().take(300).collect(),
        }),
        Ok(_) => Err(PrometheusError::Decode("success without data".into())),
        Err(e) => Err(PrometheusError::Decode(format!(
            "{e} in {} bytes",
            body.len()
        ))),
    }
}

impl PrometheusClient {
    fn series_from(api: ApiResponse) -> Result<Vec<Series>, PrometheusError> {
        match api.data {
            Some(ApiData::Matrix(entries)) => entries
                .into_iter()
                .map(|entry| {
                    Ok(Series {
                        labels: entry.metric,
                        samples: entry
                            .values
                            .iter()
                            .map(parse_sample)
                            .collect::<Result<_, _>>()?,
                    })
                })
                .collect(),
            Some(ApiData::Vector(entries)) => entries
                .into_iter()
                .map(|entry| {
                    Ok(Series {
                        labels: entry.metric,
                        samples: vec![parse_sample(&entry.value)?],
                    })
                })
                .collect(),
            Some(ApiData::Scalar(value)) => Ok(vec![Series {
                labels: BTreeMap::new(),
                samples: vec![parse_sample(&value)?],
            }]),
            Some(ApiData::String(_)) => Err(PrometheusError::Decode(
                "query returned a string, not numbers".into(),
            )),
            None => Err(PrometheusError::Decode("success without data".into())),
        }
    }
}

mod streaming;
pub use streaming::{SeriesSink, decode_range_stream};

/// Where sensors read metrics from: Prometheus in production, a bundled
/// scenario in `inspector demo`. Sensors are generic over it so the demo
/// runs their real code paths.
pub trait MetricSource: Send + Sync {
    /// Range query (see [`PrometheusClient::query_range`]).
    fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> impl Future<Output = Result<Vec<Series>, PrometheusError>> + Send;

    /// Instant query (see [`PrometheusClient::query`]).
    fn query(
        &self,
        query: &str,
        time: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Series>, PrometheusError>> + Send;

    /// Range query whose series go to `sink` one at a time (see
    /// [`PrometheusClient::query_range_each`]); by default the whole answer
    /// is fetched first (fine for small sources such as the demo's).
    fn query_range_each<K: SeriesSink>(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        mut sink: K,
    ) -> impl Future<Output = Result<K, PrometheusError>> + Send {
        async move {
            for series in self.query_range(query, start, end, step).await? {
                sink.accept(series);
            }
            Ok(sink)
        }
    }
}

impl MetricSource for PrometheusClient {
    fn query_range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> impl Future<Output = Result<Vec<Series>, PrometheusError>> + Send {
        PrometheusClient::query_range(self, query, start, end, step)
    }

    fn query(
        &self,
        query: &str,
        time: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Series>, PrometheusError>> + Send {
        PrometheusClient::query(self, query, time)
    }

    fn query_range_each<K: SeriesSink>(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
        sink: K,
    ) -> impl Future<Output = Result<K, PrometheusError>> + Send {
        PrometheusClient::query_range_each(self, query, start, end, step, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Prometheus (or a stand-in) answering an absurd timestamp used to
    /// overflow the trend fit (issue 10, case 3): now a decode error.
    #[test]
    fn absurd_timestamps_are_rejected() {
        for t in [-1e30, 1e30, f64::NAN, f64::INFINITY, 2e11] {
            let error = parse_sample(&(t, "1".into())).unwrap_err();
            assert!(error.to_string().contains("timestamp"), "{t}: {error}");
        }
        assert_eq!(parse_sample(&(-1.5, "1".into())).unwrap().t_ms, -1500);
    }

    #[test]
    fn non_finite_values_parse() {
        assert!(parse_sample(&(1.0, "NaN".into())).unwrap().value.is_nan());
        assert_eq!(
            parse_sample(&(1.0, "+Inf".into())).unwrap().value,
            f64::INFINITY
        );
        assert_eq!(
            parse_sample(&(1.0, "-Inf".into())).unwrap().value,
            f64::NEG_INFINITY
        );
        assert_eq!(
            parse_sample(&(1.5, "2.5".into())).unwrap(),
            Sample {
                t_ms: 1500,
                value: 2.5
            }
        );
        assert!(parse_sample(&(1.0, "abc".into())).is_err());
    }

    #[test]
    fn bad_url_is_a_config_error() {
        let err = PrometheusClient::new(PrometheusConfig::new("prometheus:9090")).unwrap_err();
        assert!(err.to_string().contains("must start with http://"), "{err}");
    }

    #[test]
    fn parses_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"a"},"values":[[10,"1"],[20.5,"0"]]}]}}"#;
        let api: ApiResponse = serde_json::from_str(body).unwrap();
        let series = PrometheusClient::series_from(api).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels["job"], "a");
        assert_eq!(
            series[0].samples[1],
            Sample {
                t_ms: 20_500,
                value: 0.0
            }
        );
    }
}
