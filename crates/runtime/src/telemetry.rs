//! Logging and tracing: structured logs through `tracing` (JSON when
//! `LOG_FORMAT=json`, filter from `RUST_LOG`, default `info`), and OTLP trace
//! export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (HTTP/protobuf).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes and shuts down the OTLP exporter when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("OpenTelemetry shutdown: {error}");
        }
    }
}

/// Installs the global subscriber for `service` with `default_filter` when
/// `RUST_LOG` is not set. Call once, early in `main`. A broken OTLP set-up
/// is reported and tracing continues with logs only.
pub fn init_telemetry(service: &'static str, default_filter: &str) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let fmt_json = json.then(|| tracing_subscriber::fmt::layer().json());
    let fmt_text = (!json).then(tracing_subscriber::fmt::layer);

    let mut otel_error = None;
    let provider = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(Resource::builder().with_service_name(service).build())
                    .build(),
            ),
            Err(error) => {
                otel_error = Some(error.to_string());
                None
            }
        }
    } else {
        None
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));

    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_json)
        .with(fmt_text)
        .with(otel_layer)
        .try_init();
    if let Some(error) = otel_error {
        tracing::error!(%error, "OTLP exporter could not be built; exporting no traces");
    }
    TelemetryGuard { provider }
}
