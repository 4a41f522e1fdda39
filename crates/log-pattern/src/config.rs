//! The log-pattern sensor's configuration; see `deploy/config/log-pattern.yaml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use inspector_bus::NatsConfig;
use inspector_runtime::ShardConfig;
use serde::Deserialize;

/// The whole log-pattern config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPatternConfig {
    /// Switch the sensor off: it serves health and publishes nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Shadow mode: findings are marked shadow (recorded, no alerts).
    #[serde(default)]
    pub shadow: bool,
    /// Time between run summaries (and periodic snapshots).
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Lines each workload learns from before new templates are reported,
    /// so a fresh deployment does not flood.
    #[serde(default = "default_warmup_lines")]
    pub warmup_lines: u64,
    /// Longer lines are cut to this many bytes (on a character boundary),
    /// while reading: a longer line is never held whole.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Most new-template findings per workload per run window; the rest of
    /// a burst (binary output, a new release logging ids) is rolled up into
    /// one finding at the window's end ("and 9,873 more new log shapes").
    #[serde(default = "default_max_new_patterns_per_window")]
    pub max_new_patterns_per_window: u32,
    /// Which share of the workloads this replica owns.
    #[serde(default)]
    pub shard: ShardConfig,
    /// Address of the health and `/metrics` endpoints.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// NATS connection and subjects.
    #[serde(default)]
    pub nats: NatsConfig,
    /// Template mining settings.
    #[serde(default)]
    pub drain: DrainSettings,
    /// Where learnt templates are kept across restarts.
    #[serde(default)]
    pub snapshot: SnapshotSettings,
    /// Where log lines come from.
    pub source: SourceConfig,
}

/// Drain settings; defaults are the engine's recommended ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSettings {
    /// Tree depth counting root and token-count level (≥ 3).
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Similarity threshold in [0, 1].
    #[serde(default = "default_sim_th")]
    pub sim_th: f64,
    /// Most children per tree node.
    #[serde(default = "default_max_children")]
    pub max_children: usize,
    /// Most live templates per workload (older ones are kept compactly and
    /// never reported as new again).
    #[serde(default = "default_max_clusters")]
    pub max_clusters: usize,
    /// Use the built-in token classifier (numbers, addresses, times, ids,
    /// paths, `key=value` values), before any `masks`.
    #[serde(default = "yes")]
    pub builtin_masks: bool,
    /// Extra masks applied after the built-in ones.
    #[serde(default)]
    pub masks: Vec<MaskSetting>,
}

/// One extra mask.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSetting {
    /// Regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// Placeholder name: matches become `<name>`.
    pub mask: String,
}

/// Snapshot settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// File the state is saved to every interval and on shutdown, and
    /// restored from at start. No path: nothing survives a restart.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// Where lines come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase", tag = "kind")]
pub enum SourceConfig {
    /// Pod logs through the Kubernetes API (in-cluster or kubeconfig).
    Kubernetes(KubernetesSource),
    /// A file (`-` for stdin), all lines one workload.
    File {
        /// Path, or `-` for standard input.
        path: PathBuf,
        /// Workload name for the findings.
        workload: String,
        /// Keep reading lines appended to the file (and wait for it to
        /// exist) instead of stopping at its end.
        #[serde(default)]
        follow: bool,
    },
}

/// Pod selection and log-following settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSource {
    /// API server URL; default: in-cluster config or kubeconfig.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Namespaces to watch.
    pub namespaces: Vec<String>,
    /// Label selector for the pods, e.g. `app.kubernetes.io/part-of=shop`.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// Time between pod listings (new pods, restarted containers, deletions).
    #[serde(default = "default_discovery_interval", with = "humantime_serde")]
    pub discovery_interval: Duration,
    /// Lines of history to read when starting to follow a container.
    #[serde(default = "default_tail_lines")]
    pub tail_lines: i64,
    /// Longest wait between reconnects of a broken log stream.
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn yes() -> bool {
    true
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_warmup_lines() -> u64 {
    500
}
fn default_max_line_bytes() -> usize {
    16 * 1024
}
fn default_max_new_patterns_per_window() -> u32 {
    20
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9103))
}
fn default_depth() -> usize {
    inspector_drain::DrainConfig::recommended().depth
}
fn default_sim_th() -> f64 {
    inspector_drain::DrainConfig::recommended().sim_th
}
fn default_max_children() -> usize {
    100
}
fn default_max_clusters() -> usize {
    2_000
}
fn default_discovery_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_tail_lines() -> i64 {
    100
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            depth: default_depth(),
            sim_th: default_sim_th(),
            max_children: default_max_children(),
            max_clusters: default_max_clusters(),
            builtin_masks: true,
            masks: Vec::new(),
        }
    }
}

impl LogPatternConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.nats.validate()?;
        if let SourceConfig::Kubernetes(kubernetes) = &self.source
            && let Some(url) = &kubernetes.api_url
            && !matches!(url.parse::<http::Uri>(), Ok(uri) if uri.scheme().is_some() && uri.host().is_some())
        {
            return Err(format!("source.api_url {url:?} is not an http(s) URL"));
        }
        self.shard.validate()?;
        if self.interval.is_zero() {
            return Err("interval must be positive".into());
        }
        if self.max_line_bytes < 64 {
            return Err("max_line_bytes must be at least 64".into());
        }
        self.drain_config()
            .validate()
            .map_err(|e| format!("drain: {e}"))?;
        self.masker().map_err(|e| format!("drain.masks: {e}"))?;
        if let SourceConfig::Kubernetes(k) = &self.source {
            if k.namespaces.is_empty() {
                return Err("source.namespaces must list at least one namespace".into());
            }
            if k.discovery_interval.is_zero() {
                return Err("source.discovery_interval must be positive".into());
            }
        }
        Ok(())
    }

    pub fn drain_config(&self) -> inspector_drain::DrainConfig {
        inspector_drain::DrainConfig {
            depth: self.drain.depth,
            sim_th: self.drain.sim_th,
            max_children: self.drain.max_children,
            max_clusters: Some(self.drain.max_clusters),
            ..inspector_drain::DrainConfig::recommended()
        }
    }

    pub fn masker(&self) -> Result<inspector_drain::Masker, inspector_drain::MaskError> {
        let rules: Vec<inspector_drain::MaskRule> = self
            .drain
            .masks
            .iter()
            .map(|m| inspector_drain::MaskRule::new(m.pattern.clone(), m.mask.clone()))
            .collect();
        if self.drain.builtin_masks {
            inspector_drain::Masker::with_builtin(&rules)
        } else {
            inspector_drain::Masker::new(&rules)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<LogPatternConfig, String> {
        let config: LogPatternConfig =
            inspector_runtime::load_config_from_str(yaml).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Every shipped config (local, Kubernetes, compose) loads and
    /// validates, and runs the engine's recommended matching (the defaults
    /// chosen by leave-one-system-out), not a stale copy of it.
    #[test]
    fn the_shipped_configs_are_valid() {
        let recommended = inspector_drain::DrainConfig::recommended();
        for path in inspector_runtime::config::shipped_configs("log-pattern") {
            let config: LogPatternConfig = inspector_runtime::load_config(Some(&path), [])
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let drain = config.drain_config();
            assert_eq!(
                (drain.depth, drain.sim_th),
                (recommended.depth, recommended.sim_th),
                "{}",
                path.display()
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let base = "source: {kind: kubernetes, namespaces: [shop]}\n";
        assert!(parse(base).is_ok());
        let err = parse("source: {kind: kubernetes, namespaces: []}\n").unwrap_err();
        assert!(err.starts_with("source.namespaces"), "{err}");
        let err = parse(&format!(
            "{base}drain: {{masks: [{{pattern: '(', mask: X}}]}}\n"
        ))
        .unwrap_err();
        assert!(err.starts_with("drain.masks"), "{err}");
        let err = parse(&format!("{base}drain: {{depth: 2}}\n")).unwrap_err();
        assert!(err.contains("depth"), "{err}");
        let err = parse("source: {kind: journald}\n").unwrap_err();
        assert!(err.contains("journald"), "{err}");
    }
}
