//! `inspector`: the operator's command-line tool.

mod baseline;
mod demo;
mod logs;
mod mine;
mod query;
mod render;
mod scenario;
mod stack;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "proactive-inspector operator tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sensors and the aggregator in one process over a bundled
    /// scenario, print the report, and serve the HTTP API until Ctrl-C.
    Demo {
        /// Address for the HTTP API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Print the first report and exit.
        #[arg(long)]
        once: bool,
        /// Time between passes and reports while serving.
        #[arg(long, default_value = "30s", value_parser = humantime_duration)]
        interval: Duration,
    },
    /// Print the latest inspection report of a running aggregator.
    Report {
        #[command(flatten)]
        nats: NatsArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the anomaly context of a running aggregator for a scope: the
    /// typed document (JSON) or the text block for an LLM prompt.
    Context {
        #[command(flatten)]
        nats: NatsArgs,
        /// The investigated namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// The investigated workload (Deployment, StatefulSet, ... name).
        #[arg(long)]
        workload: Option<String>,
        /// The time of the incident (RFC 3339 or Unix seconds; default now).
        #[arg(long)]
        at: Option<String>,
        /// How far before `--at` to look (e.g. 30m; default the aggregator's).
        #[arg(long)]
        window: Option<String>,
        /// `json` (the anomaly context v2) or `prompt` (text for an LLM prompt).
        #[arg(long, default_value = "json")]
        format: String,
        /// Token budget of the prompt text (cl100k_base).
        #[arg(long)]
        max_tokens: Option<String>,
    },
    /// Log template mining: evaluate the engine, or mine a file.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Seasonal baselines: backtest and score on the Numenta Anomaly Benchmark.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// The demo scenario as data for a local stack (docker compose).
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// Exit 0 when URL answers 2xx within 2 s, else 1 (container health checks).
    Probe {
        /// Default: $HEALTHCHECK_URL, else http://127.0.0.1:8080/healthz.
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Write seven days of the scenario's history (OpenMetrics, for
    /// `promtool tsdb create-blocks-from openmetrics`), then serve its series
    /// live on /metrics and append its checkout log lines to a file.
    Serve(stack::StackOptions),
}

#[derive(Debug, Subcommand)]
enum BaselineCommand {
    /// Replay every NAB series through the production detector and write
    /// NAB results files.
    Backtest {
        /// NAB directory (data/<category>/<file>.csv, labels/combined_windows.json).
        #[arg(long)]
        nab: std::path::PathBuf,
        /// Results directory.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Detector name in the results layout (no underscore).
        #[arg(long, default_value = "inspector")]
        name: String,
    },
    /// Score a results directory with NAB's rules, per profile.
    NabScore {
        #[arg(long)]
        nab: std::path::PathBuf,
        #[arg(long)]
        results: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Score the Drain engine on a Loghub-layout directory (GA, new-template
    /// precision/recall per system and mean).
    Eval {
        /// Directory with settings.json and <S>/<S>_2k.log[_structured.csv].
        dir: std::path::PathBuf,
        /// Settings to score.
        #[arg(long, value_enum, default_value = "both")]
        settings: logs::SettingsChoice,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also leave one system out: choose depth and sim_th on the others
        /// (best mean GA over the default grid), score the held-out one.
        #[arg(long)]
        loo: bool,
    },
    /// Learn templates from a file (or stdin: `-` or nothing) and print them
    /// with counts, most frequent first.
    Mine { input: Option<std::path::PathBuf> },
}

#[derive(Debug, clap::Args)]
struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Subject prefix of the deployment.
    #[arg(long, default_value = "inspector")]
    prefix: String,
    /// NATS credentials file (JWT + nkey seed), as `nats.credentials_file`.
    #[arg(long, env = "NATS_CREDS")]
    nats_creds: Option<std::path::PathBuf>,
    /// User name, with `--nats-password`.
    #[arg(long, env = "NATS_USER")]
    nats_user: Option<String>,
    /// Password, with `--nats-user`.
    #[arg(long, env = "NATS_PASSWORD")]
    nats_password: Option<String>,
    /// Authentication token.
    #[arg(long, env = "NATS_TOKEN")]
    nats_token: Option<String>,
    /// Require TLS.
    #[arg(long)]
    nats_tls: bool,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long)]
    nats_tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS, with `--nats-tls-key`.
    #[arg(long)]
    nats_tls_cert: Option<std::path::PathBuf>,
    /// Client key (PEM), with `--nats-tls-cert`.
    #[arg(long)]
    nats_tls_key: Option<std::path::PathBuf>,
}

impl NatsArgs {
    /// The same connection settings the services read from `nats:`.
    fn config(&self) -> inspector_bus::NatsConfig {
        let mut config = inspector_bus::NatsConfig::new(&self.nats_url, &self.prefix);
        config.credentials_file = self.nats_creds.clone();
        config.user = self.nats_user.clone();
        config.password = self.nats_password.clone();
        config.token = self.nats_token.clone();
        config.tls = inspector_bus::NatsTlsConfig {
            required: self.nats_tls,
            ca_file: self.nats_tls_ca.clone(),
            cert_file: self.nats_tls_cert.clone(),
            key_file: self.nats_tls_key.clone(),
        };
        config
    }
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(duration)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    inspector_runtime::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo {
            listen,
            once,
            interval,
        } => {
            let _telemetry = inspector_runtime::init_telemetry("inspector-demo", "warn");
            let shutdown = inspector_runtime::shutdown_signal();
            demo::run(
                demo::DemoOptions {
                    listen,
                    once,
                    interval,
                },
                shutdown,
            )
            .await?;
        }
        Command::Report { nats, json } => match query::latest_report(&nats.config()).await? {
            Some(report) if json => println!("{}", serde_json::to_string_pretty(&report)?),
            Some(report) => println!("{}", render::render_report(&report)),
            None => println!("No inspection report has been assembled yet."),
        },
        Command::Logs(LogsCommand::Eval {
            dir,
            settings,
            json,
            loo,
        }) => logs::eval(&dir, settings, json, loo)?,
        Command::Logs(LogsCommand::Mine { input }) => logs::mine(input.as_ref())?,
        Command::Baseline(BaselineCommand::Backtest { nab, out, name }) => {
            baseline::backtest(&nab, &out, &name)?
        }
        Command::Baseline(BaselineCommand::NabScore { nab, results, json }) => {
            baseline::nab_score(&nab, &results, json)?
        }
        Command::Scenario(ScenarioCommand::Serve(options)) => {
            let _telemetry = inspector_runtime::init_telemetry("inspector-scenario", "info");
            stack::serve(options, inspector_runtime::shutdown_signal()).await?;
        }
        Command::Probe { url } => {
            let url = url
                .or_else(|| std::env::var("HEALTHCHECK_URL").ok())
                .unwrap_or_else(|| "http://127.0.0.1:8080/healthz".into());
            let answer = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?
                .get(&url)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => anyhow::bail!("{url}: {}", response.status()),
                Err(error) => return Err(anyhow::Error::new(error).context(url)),
            }
        }
        Command::Context {
            nats,
            namespace,
            workload,
            at,
            window,
            format,
            max_tokens,
        } => {
            let params = inspector_aggregator::context::ContextParams {
                namespace,
                workload,
                at,
                window,
                max_items: None,
                format: Some(format),
                max_tokens,
            };
            let (query, format) = params.parse()?;
            let context = query::anomaly_context(&nats.config(), &query).await?;
            match format {
                inspector_aggregator::context::Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&context)?)
                }
                inspector_aggregator::context::Format::Prompt { max_tokens } => print!(
                    "{}",
                    inspector_aggregator::context::render_prompt(&context, max_tokens)
                ),
            }
        }
    }
    Ok(())
}
