//! `aggregator` binary: loads its config and runs the service.

use std::path::PathBuf;

use clap::Parser;
use inspector_aggregator::AggregatorConfig;

/// Deduplicates findings, assembles inspection reports, serves them.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (YAML); `INSPECTOR_*` environment variables override fields.
    #[arg(
        long,
        env = "INSPECTOR_CONFIG",
        default_value = "/etc/inspector/aggregator.yaml"
    )]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inspector_runtime::install_crypto_provider();
    let args = Args::parse();
    let config: AggregatorConfig = inspector_runtime::load_or_exit(
        "aggregator",
        Some(&args.config),
        AggregatorConfig::validate,
    );
    let _telemetry = inspector_runtime::init_telemetry("aggregator", "info");
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    inspector_aggregator::serve(config, listener, inspector_runtime::shutdown_signal()).await?;
    Ok(())
}
