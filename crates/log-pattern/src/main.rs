//! `log-pattern` binary: loads its config and runs the service.

use std::path::PathBuf;

use clap::Parser;
use inspector_log_pattern::LogPatternConfig;

/// Reports log line templates never seen before.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Config file (YAML); `INSPECTOR_*` environment variables override fields.
    #[arg(
        long,
        env = "INSPECTOR_CONFIG",
        default_value = "/etc/inspector/log-pattern.yaml"
    )]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inspector_runtime::install_crypto_provider();
    let args = Args::parse();
    let config: LogPatternConfig = inspector_runtime::load_or_exit(
        "log-pattern",
        Some(&args.config),
        LogPatternConfig::validate,
    );
    let _telemetry = inspector_runtime::init_telemetry("log-pattern", "info");
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    inspector_log_pattern::serve(config, listener, inspector_runtime::shutdown_signal()).await?;
    Ok(())
}
