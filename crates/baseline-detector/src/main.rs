//! `baseline-detector` binary: loads its config and runs the service.

use std::path::PathBuf;

use clap::Parser;
use inspector_baseline_detector::BaselineDetectorConfig;

/// Flags metric values far from their seasonal baseline.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (YAML); `INSPECTOR_*` environment variables override fields.
    #[arg(
        long,
        env = "INSPECTOR_CONFIG",
        default_value = "/etc/inspector/baseline-detector.yaml"
    )]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inspector_runtime::install_crypto_provider();
    let args = Args::parse();
    let config: BaselineDetectorConfig = inspector_runtime::load_or_exit(
        "baseline-detector",
        Some(&args.config),
        BaselineDetectorConfig::validate,
    );
    let _telemetry = inspector_runtime::init_telemetry("baseline-detector", "info");
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    inspector_baseline_detector::serve(config, listener, inspector_runtime::shutdown_signal())
        .await?;
    Ok(())
}
