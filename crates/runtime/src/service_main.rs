//! The whole `main` of a service binary, shared so the four binaries differ
//! only in their name, their one-line description, their config type and
//! their `serve` function.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a service binary is: its name and what it does (for `--help`).
#[derive(Debug, Clone, Copy)]
pub struct ServiceBinary {
    /// Binary, telemetry and config-file name (`/etc/inspector/<name>.yaml`).
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
}

/// Error that ends a service after it started.
pub type ServiceError = Box<dyn std::error::Error + Send + Sync>;

/// Parses `--config` (env `INSPECTOR_CONFIG`, default
/// `/etc/inspector/<name>.yaml`), installs the crypto provider, loads and
/// validates the config (a bad one exits 64 naming the field), starts
/// telemetry, binds the config's listen address and runs `serve` until
/// SIGTERM or Ctrl-C.
pub async fn run_service<C, S, F, E>(
    binary: ServiceBinary,
    validate: fn(&C) -> Result<(), String>,
    listen: fn(&C) -> SocketAddr,
    serve: S,
) -> Result<(), ServiceError>
where
    C: DeserializeOwned,
    S: FnOnce(C, TcpListener, CancellationToken) -> F,
    F: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    crate::install_crypto_provider();
    let default_config = format!("/etc/inspector/{}.yaml", binary.name);
    let args = clap::Command::new(binary.name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(binary.about)
        .arg(
            clap::Arg::new("config")
                .long("config")
                .env("INSPECTOR_CONFIG")
                .value_parser(clap::value_parser!(PathBuf))
                .default_value(default_config)
                .help("Config file (YAML); `INSPECTOR_*` environment variables override fields"),
        )
        .get_matches();
    let path = args.get_one::<PathBuf>("config").cloned();
    let config: C = crate::load_or_exit(binary.name, path.as_deref(), validate);
    let _telemetry = crate::init_telemetry(binary.name, "info");
    let listener = TcpListener::bind(listen(&config)).await?;
    let shutdown = crate::shutdown_signal();
    let grace = shutdown_grace();
    let serving = serve(config, listener, shutdown.clone());
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => result?,
        // Whatever NATS or Prometheus are doing, the process is gone within
        // the grace after SIGTERM (Kubernetes kills it at 30 s anyway); the
        // services spool what they could not send well before that.
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::error!(?grace, "shutdown took longer than its grace; exiting now");
        }
    }
    Ok(())
}

/// Environment variable setting the shutdown grace in seconds.
pub const SHUTDOWN_GRACE_ENV: &str = "SHUTDOWN_GRACE_SECONDS";

/// How long a service may take to stop after SIGTERM: `SHUTDOWN_GRACE_SECONDS`,
/// default [`DEFAULT_SHUTDOWN_GRACE`].
pub fn shutdown_grace() -> std::time::Duration {
    std::env::var(SHUTDOWN_GRACE_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_SHUTDOWN_GRACE, std::time::Duration::from_secs)
}

/// Default shutdown grace: well under Kubernetes' 30 s.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How long a service's own shutdown path may spend draining the outbox
/// before it spools the rest: a third of the grace.
pub fn drain_budget() -> std::time::Duration {
    shutdown_grace() / 3
}
