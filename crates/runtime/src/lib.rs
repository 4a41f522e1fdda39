//! What every inspector service shares at run time, so each binary's `main`
//! is a few lines: install the crypto provider, load config, start telemetry,
//! serve health and metrics, and stop cleanly on SIGTERM.

pub mod config;
pub mod ops;
pub mod sensor_host;
pub mod sensor_metrics;
pub mod sensor_pass;
pub mod service_main;
pub mod shard;
pub mod shutdown;
pub mod telemetry;

pub use config::{
    ConfigError, EXIT_CONFIG, load_config, load_config_from_process, load_config_from_str,
    load_or_exit,
};
pub use ops::{OpsState, ops_router, serve_http};
pub use sensor_host::SensorHost;
pub use sensor_metrics::SensorMetrics;
pub use sensor_pass::{PassContext, publish_pass};
pub use service_main::{ServiceBinary, ServiceError, run_service};
pub use shard::{Shard, ShardConfig, StatefulSetShard};
pub use shutdown::shutdown_signal;
pub use telemetry::{TelemetryGuard, init_telemetry};

/// Installs ring as the process-wide rustls crypto provider. Call first in
/// `main`: every TLS user (reqwest, async-nats, redis) then agrees on one
/// provider; two compiled-in providers and no default would panic at the
/// first TLS handshake.
pub fn install_crypto_provider() {
    // Err means one is already installed (tests call this repeatedly).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An error and its sources on one line (`publish to x failed: timed out`),
/// for run summaries and reports that a person or an LLM reads.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// This service's name: the executable's file name (`aggregator`,
/// `trend-predictor`, ...), for `inspector_build_info`.
pub fn service_name() -> String {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// This process' instance name: `POD_NAME` in Kubernetes (downward API),
/// else `HOSTNAME`, else the process id.
pub fn instance_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("pid-{}", std::process::id()))
}
