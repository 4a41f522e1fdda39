//! `trend-predictor` binary: loads its config and runs the service.

use std::path::PathBuf;

use clap::Parser;
use inspector_trend_predictor::TrendPredictorConfig;

/// Warns before a metric's linear trend crosses its threshold.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (YAML); `INSPECTOR_*` environment variables override fields.
    #[arg(
        long,
        env = "INSPECTOR_CONFIG",
        default_value = "/etc/inspector/trend-predictor.yaml"
    )]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inspector_runtime::install_crypto_provider();
    let args = Args::parse();
    let config: TrendPredictorConfig = inspector_runtime::load_or_exit(
        "trend-predictor",
        Some(&args.config),
        TrendPredictorConfig::validate,
    );
    let _telemetry = inspector_runtime::init_telemetry("trend-predictor", "info");
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    inspector_trend_predictor::serve(config, listener, inspector_runtime::shutdown_signal())
        .await?;
    Ok(())
}
